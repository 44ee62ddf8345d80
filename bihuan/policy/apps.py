from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "bihuan.policy"
    label = "policy"
    verbose_name = "Prevention policy: risk areas, protocol editions, measures"
