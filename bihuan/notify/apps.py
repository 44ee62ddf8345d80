from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "bihuan.notify"
    label = "notify"
