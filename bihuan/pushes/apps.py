from django.apps import AppConfig


class PushesConfig(AppConfig):
    name = "bihuan.pushes"
    label = "pushes"
    verbose_name = "Big-data push lists"

    def ready(self):
        from . import retention, tasks  # noqa: F401 - registers pushes.process and the purge
