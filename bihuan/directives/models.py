"""Directives (指令): issued by a unit to its part of the district, signed for by every unit in scope
(each receipt is a loop of kind ``directive.receipt``), and marked reached at every household (``Reach``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.register.models import KEY_GROUPS, MAX_LEVEL, SEGMENT, Household, Unit

# The directive module tells receiving units itself (issued / updated / cancelled), so the engine does not.
RECEIPT = register(LoopKind("directive.receipt", "指令", notify_on_open=False))


class Urgency(models.TextChoices):
    EXTRA_URGENT = "extra_urgent", _("特急")
    URGENT = "urgent", _("紧急")
    NORMAL = "normal", _("一般")


class DirectiveStatus(models.TextChoices):
    ISSUED = "issued", _("已下达")
    CLOSED = "closed", _("已销号")
    CANCELLED = "cancelled", _("已撤销")


class FanoutState(models.TextChoices):
    PENDING = "pending", _("等待分发")
    RUNNING = "running", _("分发中")
    DONE = "done", _("已分发")


class Directive(models.Model):
    issuer_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    issuer_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    scope_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # root of the subtree it goes to
    title = models.CharField(max_length=200)
    body = models.TextField()
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.NORMAL)
    is_exercise = models.BooleanField(default=False)  # a drill: CAP status "Exercise"
    # Target filter: unit kinds (only villages, only compounds …), named units, households with a key-group flag.
    target_kinds = models.JSONField(default=list, blank=True)
    target_unit_ids = models.JSONField(default=list, blank=True)
    household_flag = models.CharField(max_length=20, blank=True, choices=[(k, v) for k, v in KEY_GROUPS.items()])
    sign_minutes = models.PositiveIntegerField(default=30)  # each level signs within this after the one above
    reach_hours = models.PositiveIntegerField(default=24)  # every household reached within this
    reminder_minutes = models.PositiveIntegerField(default=30)
    reminder_limit = models.PositiveSmallIntegerField(default=3)
    feedback_form = models.JSONField(default=list, blank=True)  # [{"key","label","type","choices"}]
    status = models.CharField(max_length=12, choices=DirectiveStatus.choices, default=DirectiveStatus.ISSUED)
    version = models.PositiveIntegerField(default=1)
    issued_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    fanout_state = models.CharField(max_length=10, choices=FanoutState.choices, default=FanoutState.PENDING)
    fanout_total = models.PositiveIntegerField(default=0)  # households in scope
    fanout_done = models.PositiveIntegerField(default=0)
    fanout_cursor = models.BigIntegerField(default=0)  # household ids below this are written
    notify_cursor = models.BigIntegerField(default=0)  # receiving units with ids up to this are told of the issue
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["fanout_state"])]

    def __str__(self) -> str:
        return self.title

    def ack_due_for(self, level: int):
        """Each level below the issuer has ``sign_minutes`` more than the level above it."""
        return self.issued_at + timedelta(minutes=self.sign_minutes * max(1, level - self.issuer_unit.level))

    def manageable_by(self, scope) -> bool:
        """The one rule for changing a directive (update, cancel, close): the issuing unit or one above it, with
        the permission to issue. The user's own unit counts, not their scope's root: a department sees the
        whole district but changes only its own directives."""
        from bihuan.core.roles import Perm

        return scope.can(Perm.ISSUE_DIRECTIVE) and self.issuer_unit.path.startswith(scope.unit.path)

    @property
    def is_urgent(self) -> bool:
        """特急 and 紧急 directives go by SMS to the responsible people of every receiving unit."""
        return self.urgency in (Urgency.EXTRA_URGENT, Urgency.URGENT)

    @property
    def reach_due(self):
        return self.issued_at + timedelta(hours=self.reach_hours)

    @property
    def fanout_percent(self) -> int:
        return 100 if not self.fanout_total else min(100, self.fanout_done * 100 // self.fanout_total)


class ReachStatus(models.TextChoices):
    PENDING = "pending", _("未触达")
    REACHED = "reached", _("已触达")
    UNREACHABLE = "unreachable", _("无法触达")


class ReachMethod(models.TextChoices):
    PHONE = "phone", _("电话")
    WECHAT = "wechat", _("微信")
    VISIT = "visit", _("上门")
    SELF = "self", _("居民自行确认")


class Reach(models.Model):
    """One household's record for one directive: reached, by whom, how, when."""

    # Fan-out writes ~330,000 of these at once, so they carry nothing another part already gives. Indexes:
    # (directive, household) is unique and serves directive lookups; reach_rollup serves the rollup, subtrees
    # and a unit's households (``path`` is the household's unit's path: one path, one unit); a household's
    # rows are never looked up across directives. ``unit`` is a copy of the household's grid at fan-out. No
    # foreign-key constraints: the rows are only ever written by the fan-out's INSERT … SELECT from the
    # directive and the households themselves, and neither is deleted by the application (cancelling and
    # moving out are states; Django still cascades a deletion). On PostgreSQL the constraints' checks at
    # commit took longer than the insert itself (each locks the household's row), for nothing more.
    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="reaches", db_index=False,
                                  db_constraint=False)
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="+", db_index=False,
                                  db_constraint=False)
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, related_name="+", db_index=False,
                             db_constraint=False)
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)
    status = models.CharField(max_length=12, choices=ReachStatus.choices, default=ReachStatus.PENDING)
    method = models.CharField(max_length=10, choices=ReachMethod.choices, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", db_index=False)
    marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["directive", "household"], name="one_reach_per_household")]
        # One index for a directive's subtree reads (path ranges), a unit's households (one path) and the
        # rollup (GROUP BY path, status reads only this index): each index is a tenth of the fan-out's time.
        indexes = [models.Index(fields=["directive", "path", "status"], name="reach_rollup")]

    def __str__(self) -> str:
        return f"{self.directive_id}/{self.household_id}: {self.status}"
