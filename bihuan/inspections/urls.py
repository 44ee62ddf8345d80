"""URLs of the inspection pages. Every name has an entry in ``tests/test_views.py`` ROUTES (the access matrix)."""

from django.urls import path

from . import views

app_name = "inspections"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("plans/", views.plans, name="plans"),
    path("visits/<int:visit_id>/", views.visit_detail, name="visit"),
    path("visits/<int:visit_id>/start/", views.visit_start, name="visit_start"),
    path("visits/<int:visit_id>/submit/", views.visit_submit, name="visit_submit"),
    path("photos/<int:answer_id>/", views.photo, name="photo"),
    path("findings/", views.findings, name="findings"),
    path("findings/<int:finding_id>/", views.finding_detail, name="finding"),
    path("findings/<int:finding_id>/report/", views.finding_report, name="finding_report"),
    path("findings/<int:finding_id>/close/", views.finding_close, name="finding_close"),
    path("findings/<int:finding_id>/return/", views.finding_return, name="finding_return"),
    path("ranking/", views.ranking, name="ranking"),
    path("ranking/units/<int:unit_id>/", views.drill, name="drill"),
    path("bulletins/", views.bulletins, name="bulletins"),
    path("bulletins/<int:bulletin_id>/", views.bulletin_detail, name="bulletin"),
    path("bulletins/<int:bulletin_id>.pdf", views.bulletin_pdf, name="bulletin_pdf"),
    path("bulletins/<int:bulletin_id>.xlsx", views.bulletin_xlsx, name="bulletin_xlsx"),
    path("bulletins/<int:bulletin_id>/publish/", views.bulletin_publish, name="bulletin_publish"),
]
