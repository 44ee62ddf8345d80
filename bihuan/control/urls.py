"""URLs of the control-and-care pages. Every name has an entry in ``tests/test_views.py`` ROUTES (the access
matrix); the person's own page is ``person`` (``p/<token>/``, mounted in ``bihuan.urls``)."""

from django.urls import path

from . import views

app_name = "control"

urlpatterns = [
    path("", views.mine, name="mine"),
    path("today/", views.today, name="today"),
    path("dashboard/", views.dashboard_page, name="dashboard"),
    path("dashboard.xlsx", views.export, name="export"),
    path("cases/", views.case_list, name="cases"),
    path("cases/from-verification/<int:person_id>/", views.open_from_verification, name="from_verification"),
    path("cases/new/", views.new_case, name="new"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("cases/<int:case_id>/checkins/", views.record_checkin, name="checkin"),
    path("cases/<int:case_id>/measures/<str:key>/", views.mark_measure, name="measure"),
    path("cases/<int:case_id>/team/", views.set_team, name="team"),
    path("cases/<int:case_id>/period/", views.change_period, name="period"),
    path("cases/<int:case_id>/move-up/", views.move_up, name="move_up"),
    path("cases/<int:case_id>/release/", views.release_case, name="release"),
    path("cases/<int:case_id>/notice/", views.notice, name="notice"),
    path("cases/<int:case_id>/notice.pdf", views.notice_pdf, name="notice_pdf"),
    path("cases/<int:case_id>/services/", views.request_service, name="service_new"),
    path("tests/<int:sample_id>/result/", views.test_result, name="test_result"),
    path("services/<int:service_id>/assign/", views.assign_service, name="service_assign"),
    path("services/<int:service_id>/done/", views.service_done, name="service_done"),
    path("services/<int:service_id>/confirm/", views.confirm_service, name="service_confirm"),
    path("care-visits/", views.care_visit, name="care_visit"),
    path("alerts/<int:loop_id>/resolve/", views.resolve_alert, name="resolve_alert"),
    path("types/", views.type_list, name="types"),
    path("types/new/", views.type_edit, name="type_new"),
    path("types/<slug:code>/", views.type_edit, name="type_edit"),
    path("types/<slug:code>/retire/", views.type_retire, name="type_retire"),
]
