from django.apps import AppConfig


class DirectivesConfig(AppConfig):
    name = "bihuan.directives"
    label = "directives"
    verbose_name = "Directives"

    def ready(self):
        from . import tasks  # noqa: F401 - registers the fan-out with the worker
