"""URLs of the field-force pages. Every name has an entry in ``tests/test_views.py`` ROUTES (the access matrix);
the public pages (``forces_join``, ``forces_helper``, ``forces_helper_certificate``, ``forces_notice``) are mounted
in ``bihuan.urls`` under ``f/``."""

from django.urls import path

from . import views

app_name = "forces"

urlpatterns = [
    path("", views.home, name="home"),
    path("mine/", views.mine, name="mine"),
    path("helpers/", views.helpers, name="helpers"),
    path("helpers/<int:helper_id>/decide/", views.decide, name="decide"),
    path("helpers/<int:helper_id>/status/", views.helper_status, name="helper_status"),
    path("helpers/<int:helper_id>/reveal/", views.helper_reveal, name="helper_reveal"),
    path("helpers/<int:helper_id>/certificate.pdf", views.certificate, name="certificate"),
    path("units/<int:unit_id>/poster/", views.poster, name="poster"),
    path("units/<int:unit_id>/group-code/", views.group_code, name="group_code"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:team_id>/", views.team, name="team"),
    path("posts/", views.posts, name="posts"),
    path("posts/<int:post_id>/", views.post_roster, name="roster"),
    path("posts/<int:post_id>/edit/", views.post_edit, name="post_edit"),
    path("rosters/copy/", views.copy_week, name="copy_week"),
    path("swaps/<int:swap_id>/decide/", views.swap_decide, name="swap_decide"),
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/<int:task_id>/", views.task, name="task"),
    path("hours/", views.hours, name="hours"),
    path("places/<int:place_id>/edit/", views.place_edit, name="place_edit"),
    path("rosters/upload/", views.roster_upload, name="roster_upload"),
    path("shifts/<int:shift_id>/tap/", views.tap, name="tap"),
    path("places/", views.places, name="places"),
    path("places/<int:place_id>/log/", views.log_disinfection, name="log"),
    path("disinfection.xlsx", views.disinfection_export, name="disinfection_export"),
    path("notices/", views.notices, name="notices"),
    path("notices/<int:notice_id>/sheets/", views.notice_sheets, name="notice_sheets"),
]

public = [
    path("join/<str:token>/", views.join, name="forces_join"),
    path("h/<str:token>/", views.helper_page, name="forces_helper"),
    path("h/<str:token>/certificate.pdf", views.helper_certificate, name="forces_helper_certificate"),
    path("n/<str:token>/", views.notice_page, name="forces_notice"),
]
