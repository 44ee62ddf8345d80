"""Inspections (督查, 四不两直): inspection groups with their territory, weekly plans of unannounced visits drawn
at random, versioned checklists answered on a phone, findings that open rectification loops (整改) on the loop
engine, weekly scores of every unit from live data (考核, 红黑榜) and the weekly bulletin (督导通报).

What a finding's rectification is (issued, reported, closed, returned) is read from its loop, never copied here.
Everything that is computed (a visit's pass rate, whether a finding is overdue) lives on the models or in
``scoring`` / ``selectors``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.register.models import MAX_LEVEL, SEGMENT, Unit


class Severity(models.TextChoices):
    MINOR = "minor", _("一般")
    MAJOR = "major", _("较重")
    CRITICAL = "critical", _("严重")


SEVERITY_ORDER = [Severity.MINOR, Severity.MAJOR, Severity.CRITICAL]


def raised(severity: str) -> str:
    """One step more severe (a repeat within ``REPEAT_DAYS``); critical stays critical."""
    i = SEVERITY_ORDER.index(severity)
    return SEVERITY_ORDER[min(i + 1, len(SEVERITY_ORDER) - 1)]


# Rectification loops (整改), one kind per severity so that each carries its own deadline: the responsible unit is
# told at once, reminded once when the deadline passes, and the parent unit is told (督办) if that is not enough.
RECTIFY_KINDS = {
    Severity.MINOR: register(LoopKind("inspections.rectify.minor", "整改（一般）", due_within=dt.timedelta(hours=72),
                                      reminder_interval=4 * 3600, reminder_limit=1)),
    Severity.MAJOR: register(LoopKind("inspections.rectify.major", "整改（较重）", due_within=dt.timedelta(hours=24),
                                      reminder_interval=2 * 3600, reminder_limit=1)),
    Severity.CRITICAL: register(LoopKind("inspections.rectify.critical", "整改（严重）", urgent=True,
                                         due_within=dt.timedelta(hours=4), reminder_interval=3600,
                                         reminder_limit=1)),
}
RECTIFY_KIND_LIST = tuple(RECTIFY_KINDS.values())
REPEAT_DAYS = 14


class TargetKind(models.TextChoices):
    HOME = "home", _("居家隔离户")
    CHECKPOINT = "checkpoint", _("卡点")
    COMMUNITY = "community", _("村（社区）")
    SAMPLING_POINT = "sampling_point", _("核酸采样点")
    COMPOUND = "compound", _("小区")


class InspectionGroup(models.Model):
    """督导组: a leader and members (staff accounts, normally of role 督查组) and the subtrees they inspect."""

    name = models.CharField(max_length=100)
    leader = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="inspection_groups", blank=True)
    territory = models.ManyToManyField(Unit, related_name="+")  # roots of the subtrees the group inspects
    visits_per_week = models.PositiveSmallIntegerField(default=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class ChecklistTemplate(models.Model):
    """A versioned checklist for one kind of target. A new version is a new row; visits keep theirs."""

    target_kind = models.CharField(max_length=20, choices=TargetKind.choices)
    version = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target_kind", "-version"]
        constraints = [models.UniqueConstraint(fields=["target_kind", "version"], name="one_checklist_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ChecklistItem(models.Model):
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=40)  # the same key across versions: repeats are matched on it
    text = models.CharField(max_length=200)
    weight = models.PositiveSmallIntegerField(default=1)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MINOR)
    prefill = models.CharField(max_length=40, blank=True)  # a rule of ``prefill.RULES`` that the data answers
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["template_id", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["template", "key"], name="one_item_key_per_template")]

    def __str__(self) -> str:
        return self.text


class Plan(models.Model):
    """A group's weekly plan: targets drawn at random, weighted by risk and lagging indicators. ``seed`` and the
    moment the weights were read (``as_of``) are kept, so the draw can be repeated for audit."""

    group = models.ForeignKey(InspectionGroup, on_delete=models.PROTECT, related_name="plans")
    week_start = models.DateField()  # a Monday
    seed = models.BigIntegerField()
    as_of = models.DateTimeField()
    candidates = models.PositiveIntegerField(default=0)
    weights_digest = models.CharField(max_length=64, blank=True)  # sha256 of the (target, weight) list
    # Every candidate as drawn: [kind, target id (case, post or unit), weight, {part: points}] (``planning``).
    weights = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-week_start", "group_id"]
        constraints = [models.UniqueConstraint(fields=["group", "week_start"], name="one_plan_per_group_week")]

    def __str__(self) -> str:
        return f"{self.group} {self.week_start}"


class VisitState(models.TextChoices):
    PLANNED = "planned", _("计划中")
    IN_PROGRESS = "in_progress", _("检查中")
    DONE = "done", _("已完成")


class Visit(models.Model):
    """One unannounced visit. Until it starts (``PLANNED``) only the district command and the group see it."""

    group = models.ForeignKey(InspectionGroup, on_delete=models.PROTECT, related_name="visits")
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits")
    target_kind = models.CharField(max_length=20, choices=TargetKind.choices)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # the place visited (or its grid)
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, db_index=True)
    responsible_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # owns rectification
    case = models.ForeignKey("control.ControlCase", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")  # a home under control
    post = models.ForeignKey("forces.Post", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")  # a checkpoint or sampling point of the duty roster
    label = models.CharField(max_length=200)  # what the inspector reads: the place, never a person's full name
    weight = models.FloatField(default=1.0)  # the weight it was drawn with
    planned_for = models.DateField()
    state = models.CharField(max_length=12, choices=VisitState.choices, default=VisitState.PLANNED)
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.PROTECT, related_name="+")
    inspector = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["planned_for", "id"]
        indexes = [models.Index(fields=["state", "path"]), models.Index(fields=["finished_at"])]

    def __str__(self) -> str:
        return f"{self.get_target_kind_display()} {self.label}"

    @property
    def is_planned(self) -> bool:
        return self.state == VisitState.PLANNED


class AnswerResult(models.TextChoices):
    PASS = "pass", _("符合")
    FAIL = "fail", _("不符合")
    NA = "na", _("不适用")


class Answer(models.Model):
    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)  # the responsible unit's: pass rates roll up by path
    prefilled = models.CharField(max_length=4, choices=AnswerResult.choices, blank=True)  # what the data said
    evidence = models.CharField(max_length=300, blank=True)  # the figures behind the prefill
    evidence_url = models.CharField(max_length=300, blank=True)
    result = models.CharField(max_length=4, choices=AnswerResult.choices, blank=True)
    override_reason = models.CharField(max_length=300, blank=True)  # required when result differs from prefilled
    note = models.CharField(max_length=500, blank=True)
    photo = models.FileField(upload_to="inspections/%Y/%m/", blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["visit_id", "item__order", "id"]
        constraints = [models.UniqueConstraint(fields=["visit", "item"], name="one_answer_per_item")]
        indexes = [models.Index(fields=["path", "answered_at"])]

    def __str__(self) -> str:
        return f"{self.visit_id}/{self.item_id}: {self.result}"


class Finding(models.Model):
    """A failed item: one rectification loop (kind by severity) owned by the responsible unit."""

    answer = models.OneToOneField(Answer, on_delete=models.CASCADE, related_name="finding")
    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="findings")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # the responsible unit
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, db_index=True)
    item_key = models.CharField(max_length=40)
    text = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    repeat_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    loop = models.ForeignKey("loops.Loop", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    report_photo = models.FileField(upload_to="inspections/rectified/%Y/%m/", blank=True)
    returns = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["unit", "item_key", "created_at"])]

    def __str__(self) -> str:
        return self.text

    @property
    def kind(self) -> str:
        return RECTIFY_KINDS[self.severity]


class RuleSet(models.Model):
    """考核规则: the weights of the weekly score as versioned data. The newest version whose ``effective_from`` is
    on or before a week's Monday scores that week, so a past week is always scored by the rules it had."""

    version = models.PositiveSmallIntegerField(unique=True)
    effective_from = models.DateField()
    weights = models.JSONField()  # {indicator key: weight}
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"v{self.version}"


class WeekScore(models.Model):
    """A finished week's score of one unit, kept as computed (the trend reads these; recomputing gives the same).
    ``counts`` holds each indicator's [in time, total]."""

    week_start = models.DateField()
    rules = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField()
    score = models.FloatField(null=True)
    rank = models.PositiveIntegerField(null=True)
    counts = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["week_start", "unit"], name="one_score_per_unit_week")]
        indexes = [models.Index(fields=["week_start", "level", "rank"])]

    def __str__(self) -> str:
        return f"{self.week_start} {self.unit_id}: {self.score}"


class Bulletin(models.Model):
    """督导通报: one week's bulletin of a district or a township. Its content is kept as published."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    week_start = models.DateField()
    year = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()  # 第 N 期 of the year, per unit
    content = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-week_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["unit", "week_start"], name="one_bulletin_per_unit_week"),
            models.UniqueConstraint(fields=["unit", "year", "number"], name="one_bulletin_number"),
        ]

    def __str__(self) -> str:
        return f"{self.year} 第{self.number}期"
