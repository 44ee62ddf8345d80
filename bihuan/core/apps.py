from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bihuan.core"
    label = "core"
    verbose_name = "Bihuan core"
