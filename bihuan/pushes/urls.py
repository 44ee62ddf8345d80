"""URLs of the pushed-list pages (routing, verification, transfers)."""

from django.urls import path

app_name = "pushes"

urlpatterns: list = []
