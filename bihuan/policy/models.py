"""Prevention policy as data (分级分类管控): published risk-area lists and the editions of the prevention
protocol, and the measures a protocol prescribes. Used by pushes (a verification's recommended measure) and
by control (the phases of a control case).

The tables were created by ``pushes`` and keep their names (``Meta.db_table``): the models moved here with
state-only migrations, no data moved.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Measure(models.TextChoices):
    CENTRALIZED_QUARANTINE = "centralized_quarantine", _("集中隔离")
    HOME_ISOLATION = "home_isolation", _("居家隔离")
    HOME_MONITORING = "home_monitoring", _("居家健康监测")
    TESTS_ONLY = "tests_only", _("核酸检测")
    NONE = "none", _("无需管控")


class RiskLevel(models.TextChoices):
    HIGH = "high", _("高风险")
    MEDIUM = "medium", _("中风险")
    LOW = "low", _("低风险")


class RiskArea(models.Model):
    """One area on a published risk-area list, valid from/to a date."""

    level = models.CharField(max_length=8, choices=RiskLevel.choices)
    area_code = models.CharField(max_length=12, blank=True)  # GB/T 2260 code, when known
    name = models.CharField(max_length=200)  # e.g. 上海市浦东新区
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)  # None = still in force
    list_name = models.CharField(max_length=100, blank=True)  # the published list it came from

    class Meta:
        db_table = "pushes_riskarea"
        indexes = [models.Index(fields=["effective_from", "effective_to"], name="pushes_risk_effecti_2175ca_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.level})"


class Protocol(models.Model):
    """An edition of the prevention protocol (e.g. 第九版, June 2022): rules from risk level to measure.

    Editions are never edited in place: a change is a new edition in force from its date (``do_add_protocol``),
    so every recommendation can say which edition it came from.

    ``rules`` is a list of {"risk": "high"|"medium"|"low", "within_days": 7, "measure": Measure value,
    "days": 7, "tests": [1, 2, 3, 5, 7], "then": [{"measure": …, "days": …, "tests": […]}]}.
    """

    name = models.CharField(max_length=100)
    effective_from = models.DateField()
    rules = models.JSONField(default=list)
    note = models.TextField(blank=True)

    class Meta:
        db_table = "pushes_protocol"
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return self.name
