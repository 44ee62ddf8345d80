from django.urls import path

from . import staff_views, views

app_name = "register"

urlpatterns = [
    path("units/<int:unit_id>/", views.unit_detail, name="unit"),
    path("units/<int:unit_id>/blind-spots/", views.blind_spots, name="blind_spots"),
    path("units/<int:unit_id>/export.xlsx", views.export_unit, name="export"),
    path("households/", views.households, name="households"),
    path("households/<int:household_id>/", views.household_detail, name="household"),
    path("residents/", views.residents, name="residents"),
    path("residents/<int:resident_id>/reveal/", views.reveal_resident, name="reveal"),
    path("import/", views.import_register, name="import"),
    path("import/template.xlsx", views.template_download, name="template"),
    path("units/<int:unit_id>/staff/", staff_views.staff_list, name="staff"),
    path("units/<int:unit_id>/staff/new/", staff_views.staff_create, name="staff_create"),
    path("units/<int:unit_id>/leaders/", staff_views.leader_appoint, name="leader_appoint"),
    path("units/<int:unit_id>/no-property/", staff_views.unit_no_property, name="no_property"),
    path("leaders/<int:leader_id>/remove/", staff_views.leader_remove, name="leader_remove"),
    path("staff/<int:staff_id>/edit/", staff_views.staff_edit, name="staff_edit"),
    path("staff/<int:staff_id>/deactivate/", staff_views.staff_deactivate, name="staff_deactivate"),
    path("staff/<int:staff_id>/reset-password/", staff_views.staff_reset_password, name="staff_reset_password"),
    path("staff/<int:staff_id>/unlock/", staff_views.staff_unlock, name="staff_unlock"),
    path("staff/<int:staff_id>/reset-2fa/", staff_views.staff_reset_2fa, name="staff_reset_2fa"),
    path("staff/<int:staff_id>/reveal/", staff_views.staff_reveal, name="staff_reveal"),
    path("password/", staff_views.change_password, name="change_password"),
]
