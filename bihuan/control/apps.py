from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "bihuan.control"
    label = "control"
    verbose_name = "Graded control and care"

    def ready(self):
        # Registers control.checkins, control.samples, control.release and the purge of closed cases.
        # person_panel: control's part of a pushed person's page.
        from . import person_panel, retention, tasks  # noqa: F401
