from django.apps import AppConfig


class TodayConfig(AppConfig):
    name = "bihuan.today"
    label = "today"
    verbose_name = "Today: each role's first page and the situation board"
