from django.apps import AppConfig


class CheckpointsConfig(AppConfig):
    name = "bihuan.checkpoints"
    label = "checkpoints"
    verbose_name = "Checkpoints, self-reports and household screening"

    def ready(self):
        from . import report  # noqa: F401 - adds the checkpoint figures to the daily report (日报)
