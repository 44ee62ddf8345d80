"""URLs of the pushed-list pages."""

from django.urls import include, path

from bihuan.policy import urls as policy_urls

from . import views

app_name = "pushes"

# --- the day's list, verification, transfers, manual dispatch, hand-off (routing / verify / transfers) ----
# Every name here has an entry in bihuan/pushes/tests/test_views.py ROUTES (the access matrix).
urlpatterns = [
    path("", views.person_list, name="list"),
    path("people/<int:person_id>/", views.person_detail, name="person"),
    path("people/<int:person_id>/save/", views.save, name="save"),
    path("people/<int:person_id>/call/", views.call, name="call"),
    path("people/<int:person_id>/reveal/", views.reveal, name="reveal"),
    path("people/<int:person_id>/fix-id/", views.fix_id, name="fix_id"),
    path("people/<int:person_id>/transfer/", views.transfer, name="transfer"),
    path("people/<int:person_id>/dispatch/", views.dispatch, name="dispatch"),
    path("transfers/", views.transfers, name="transfers"),
    path("transfers/<int:transfer_id>/accept/", views.accept, name="accept"),
    path("transfers/<int:transfer_id>/return/", views.return_transfer, name="return"),
    path("dispatch/", views.dispatch_queue, name="dispatch_queue"),
    path("ping-pong/", views.ping_pong, name="ping_pong"),
    path("handoff.xlsx", views.handoff, name="handoff"),
]

# --- report / policy / dashboard pages (owned by the report-and-policy work) ---------------------------
# Add them below with `urlpatterns += [...]`; give each name an entry in a ROUTES dict in a test module of
# bihuan/pushes/tests (test_views.py collects every module's ROUTES to check that no page lacks one).

from . import report_views  # noqa: E402 - the report / policy pages, kept apart from the list pages above

urlpatterns += [
    path("dashboard/", report_views.dashboard, name="dashboard"),
    path("report/", report_views.daily_report, name="report"),
    path("report.xlsx", report_views.daily_report_xlsx, name="report_xlsx"),
    path("policy/", include(policy_urls)),  # the policy desk (bihuan/policy), named pushes:policy…
]

# --- uploading pushed lists: the batches, the two-step upload, a batch's progress and report -------------
# Every name here has an entry in bihuan/pushes/tests/test_upload_views.py ROUTES.

from . import upload_views  # noqa: E402 - the upload pages, kept apart from the list pages above

urlpatterns += [
    path("batches/", upload_views.batches, name="batches"),
    path("upload/", upload_views.upload, name="upload"),
    path("batches/<int:batch_id>/", upload_views.batch_detail, name="batch"),
    path("batches/<int:batch_id>/progress/", upload_views.batch_progress, name="batch_progress"),
    path("batches/<int:batch_id>/report.xlsx", upload_views.batch_report, name="batch_report"),
]
