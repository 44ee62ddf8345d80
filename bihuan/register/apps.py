from django.apps import AppConfig


class RegisterConfig(AppConfig):
    name = "bihuan.register"
    label = "register"
    verbose_name = "Register of the seven levels"

    def ready(self):
        from . import retention  # noqa: F401 - registers the residents' purge
