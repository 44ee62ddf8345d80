from django.urls import path

from . import views

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
]
