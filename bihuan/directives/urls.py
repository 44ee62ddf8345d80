from django.urls import path

from . import views

app_name = "directives"

urlpatterns = [
    path("", views.directive_list, name="list"),
    path("new/", views.issue, name="new"),
    path("<int:directive_id>/", views.detail, name="detail"),
    path("<int:directive_id>/progress/", views.progress, name="progress"),
    path("<int:directive_id>/feedback.xlsx", views.export_feedback, name="export"),
    path("<int:directive_id>/update/", views.update, name="update"),
    path("<int:directive_id>/cancel/", views.cancel, name="cancel"),
    path("<int:directive_id>/close/", views.close, name="close"),
    path("<int:directive_id>/mark/", views.mark, name="mark"),
    path("<int:directive_id>/mark/households/", views.mark_households, name="mark_households"),
    path("<int:directive_id>/qr/", views.qr_sheet, name="qr"),
    path("receipts/<int:loop_id>/sign/", views.sign, name="sign"),
    path("receipts/<int:loop_id>/relay/", views.relay, name="relay"),
    path("<int:directive_id>/readiness/", views.readiness, name="readiness"),
    path("<int:directive_id>/readiness.xlsx", views.readiness_xlsx, name="readiness_xlsx"),
    path("<int:directive_id>/cap.xml", views.cap_xml, name="cap"),
    path("receipts/<int:loop_id>/report/", views.report, name="report"),
    path("receipts/<int:loop_id>/ack.xml", views.ack_xml, name="ack"),
]
