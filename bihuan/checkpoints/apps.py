from django.apps import AppConfig


class CheckpointsConfig(AppConfig):
    name = "bihuan.checkpoints"
    label = "checkpoints"
    verbose_name = "Checkpoints, self-reports and household screening"

    def ready(self):
        from . import (  # noqa: F401 - the daily report's sections (日报); the checkpoints.push task
            report,
            tasks,
        )
