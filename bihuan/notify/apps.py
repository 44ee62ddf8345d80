from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "bihuan.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self):
        from . import conf, retention, tasks  # noqa: F401 - registers notify.deliver and the purge

        conf.load()  # a malformed BIHUAN_SMTP_* / BIHUAN_SMS_* / BIHUAN_NOTIFY_* fails the start, not a send
