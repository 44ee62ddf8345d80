"""URLs of the control-and-care pages."""

app_name = "control"
urlpatterns: list = []
