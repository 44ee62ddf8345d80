from django.apps import AppConfig


class PushesConfig(AppConfig):
    name = "bihuan.pushes"
    label = "pushes"
    verbose_name = "Big-data push lists"
