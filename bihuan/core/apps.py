from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bihuan.core"
    label = "core"
    verbose_name = "Bihuan core"

    def ready(self):
        from . import excel  # noqa: F401 - installs the formula guard on every workbook cell (core.excel)
