from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bihuan.core"
    label = "core"
    verbose_name = "Bihuan core"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from bihuan.login import stamp_session

        from . import excel  # noqa: F401 - installs the formula guard on every workbook cell (core.excel)

        user_logged_in.connect(stamp_session, dispatch_uid="bihuan.core.login.stamp_session")
