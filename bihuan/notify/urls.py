from django.urls import path

from . import views

app_name = "notify"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read/", views.mark_read, name="mark_read"),
    path("notify/settings/", views.preferences, name="preferences"),
    path("notify/robots/", views.robots, name="robots"),
    path("notify/robots/<int:robot_id>/", views.robot_edit, name="robot_edit"),
    path("notify/robots/<int:robot_id>/active/", views.robot_active, name="robot_active"),
    path("notify/robots/<int:robot_id>/test/", views.robot_test, name="robot_test"),
    path("notify/robots/<int:robot_id>/test/state/", views.robot_test_state, name="robot_test_state"),
]
