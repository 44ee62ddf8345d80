from django.apps import AppConfig


class ForcesConfig(AppConfig):
    name = "bihuan.forces"
    label = "forces"
    verbose_name = "People on the ground"

    def ready(self):
        # Registers forces.shifts (missed shift starts: reminded, then escalated).
        from . import tasks  # noqa: F401
