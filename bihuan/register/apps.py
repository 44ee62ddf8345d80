from django.apps import AppConfig


class RegisterConfig(AppConfig):
    name = "bihuan.register"
    label = "register"
    verbose_name = "Register of the seven levels"
