from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bihuan.core"
    label = "core"
    verbose_name = "Bihuan core"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from bihuan.login import stamp_session

        from . import audit  # excel installs the formula guard on every workbook cell (core.excel)

        audit.register_task()  # the worker seals the audit chain every tick

        user_logged_in.connect(stamp_session, dispatch_uid="bihuan.core.login.stamp_session")
