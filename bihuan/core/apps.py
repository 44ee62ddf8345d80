from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bihuan.core"
    label = "core"
    verbose_name = "Bihuan core"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from bihuan.login import stamp_session
        from bihuan.second_factor import at_sign_in

        # excel installs the formula guard on every workbook cell (core.excel)
        from . import audit, statistics

        audit.register_task()  # the worker seals the audit chain every tick
        statistics.register_task()  # and keeps SQLite's planner statistics fresh

        user_logged_in.connect(stamp_session, dispatch_uid="bihuan.core.login.stamp_session")
        user_logged_in.connect(at_sign_in, dispatch_uid="bihuan.second_factor.at_sign_in")
