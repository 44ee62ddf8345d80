from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The generated districts (tiny, demo, yaodu) and the ``generate`` and ``demo`` commands: no models."""

    name = "bihuan.demo"
    label = "demo"
    verbose_name = "Generated districts for the demo and the benchmarks"
