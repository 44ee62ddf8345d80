"""URLs of the policy desk. They are served under ``/pushes/policy/`` with the ``pushes:`` names
(``pushes:policy``, ``pushes:policy_protocol_add`` …), where the push-list pages link to them: see
``bihuan/pushes/urls.py``. Every name has an entry in ``bihuan/policy/tests/test_views.py`` ROUTES."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.policy_page, name="policy"),
    path("classify/", views.policy_classify, name="policy_classify"),
    path("template.xlsx", views.policy_template, name="policy_template"),
    path("areas/", views.policy_area_add, name="policy_area_add"),
    path("areas/<int:area_id>/end/", views.policy_area_end, name="policy_area_end"),
    path("areas/import/", views.policy_import, name="policy_import"),
    path("protocols/", views.policy_protocol_add, name="policy_protocol_add"),
]
