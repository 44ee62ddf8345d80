from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "bihuan.control"
    label = "control"
    verbose_name = "Graded control and care"
