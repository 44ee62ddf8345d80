from django.apps import AppConfig


class InspectionsConfig(AppConfig):
    name = "bihuan.inspections"
    label = "inspections"
    verbose_name = "Inspections and accountability"
