from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "bihuan.control"
    label = "control"
    verbose_name = "Graded control and care"

    def ready(self):
        from . import tasks  # noqa: F401 - registers control.checkins, control.samples and control.release
