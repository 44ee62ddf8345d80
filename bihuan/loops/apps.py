from django.apps import AppConfig


class LoopsConfig(AppConfig):
    name = "bihuan.loops"
    label = "loops"
    verbose_name = "Loop engine"

    def ready(self):
        from . import tasks  # noqa: F401 - registers the reminder round with the worker
