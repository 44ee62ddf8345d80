"""The loop engine: one mechanism for every piece of work that is handed to someone with a deadline.

A loop is owned by a unit (and optionally a person), started by an originator, and moves
issued → acknowledged (签收) → in progress → reported (反馈) → closed (销号); it can also be returned
(退回) or cancelled. Until it is reported, the worker reminds its owner (催办) every ``reminder_interval``
up to ``reminder_limit`` times, then tells the parent unit (督办). Every change leaves a ``LoopEvent``.

Modules own their payload and point at it with ``kind`` + ``subject_id`` (e.g. a directive's receipts are
the loops of kind ``directive.receipt`` with ``subject_id`` = the directive), plus ``data`` for small
per-loop answers (feedback forms).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bihuan.register.models import MAX_LEVEL, SEGMENT, Unit


class LoopState(models.TextChoices):
    ISSUED = "issued", _("待签收")
    ACKNOWLEDGED = "acknowledged", _("已签收")
    IN_PROGRESS = "in_progress", _("办理中")
    REPORTED = "reported", _("已反馈")
    CLOSED = "closed", _("已销号")
    RETURNED = "returned", _("已退回")
    CANCELLED = "cancelled", _("已撤销")


OPEN_STATES = (LoopState.ISSUED, LoopState.ACKNOWLEDGED, LoopState.IN_PROGRESS)
DONE_STATES = (LoopState.REPORTED, LoopState.CLOSED)
TERMINAL_STATES = (LoopState.CLOSED, LoopState.RETURNED, LoopState.CANCELLED)


def overdue_q(at) -> models.Q:
    """THE definition of overdue (超时): open at ``at`` and past its deadline then — the deadline to sign for it
    while it was not signed, or the deadline to report. Exact for any moment, past or present (a loop's state
    at ``at`` is read from its timestamps), so daily reports can ask about the end of an earlier day."""
    open_at = models.Q(created_at__lte=at) & (
        models.Q(state__in=OPEN_STATES)
        | ((models.Q(reported_at__isnull=True) | models.Q(reported_at__gt=at))
           & (models.Q(closed_at__isnull=True) | models.Q(closed_at__gt=at)))
    )
    late = models.Q(due_at__lt=at) | (models.Q(ack_due_at__lt=at)
                                      & (models.Q(acknowledged_at__isnull=True) | models.Q(acknowledged_at__gt=at)))
    return open_at & late


def overdue_sql(alias: str = "") -> str:
    """The same rule for raw SQL over a loop's current state, as a 0/1 expression. ``alias`` is the loop
    table's alias with its dot (``"l."``); the expression takes two parameters, both the current time."""
    states = ", ".join(f"'{s}'" for s in OPEN_STATES)
    return (f"CASE WHEN {alias}state IN ({states}) AND (({alias}state = 'issued' AND {alias}ack_due_at < %s) "
            f"OR {alias}due_at < %s) THEN 1 ELSE 0 END")


class LoopQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def overdue(self, at=None):
        """Loops overdue at ``at`` (now by default): see ``overdue_q``."""
        return self.filter(overdue_q(at or timezone.now()))


class Loop(models.Model):
    kind = models.CharField(max_length=40)
    subject_id = models.BigIntegerField()
    title = models.CharField(max_length=200)
    owner_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)  # the owner unit's path: scoping and rollups
    level = models.PositiveSmallIntegerField()
    owner_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    originator_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    originator_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=LoopState.choices, default=LoopState.ISSUED)
    ack_due_at = models.DateTimeField(null=True, blank=True)  # sign for it by …
    due_at = models.DateTimeField(null=True, blank=True)  # report back by …
    reminder_interval = models.PositiveIntegerField(default=1800)  # seconds
    reminder_limit = models.PositiveSmallIntegerField(default=3)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    next_reminder_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LoopQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject_id", "owner_unit"], name="one_loop_per_unit_and_subject"),
        ]
        indexes = [
            models.Index(fields=["kind", "subject_id", "state"]),
            models.Index(fields=["next_reminder_at"]),
            models.Index(fields=["path"]),
            # open loops of one kind in a subtree (a grid's verifications, a unit's alerts): a range of the
            # subtree in each open state, not every loop of the kind
            models.Index(fields=["kind", "state", "path"], name="loop_kind_state_path"),
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.owner_unit_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def is_overdue(self, now=None) -> bool:
        """``overdue_q`` for one loop in memory: open, past its deadline to sign (if not signed) or to report."""
        now = now or timezone.now()
        if not self.is_open:
            return False
        if self.state == LoopState.ISSUED and self.ack_due_at and now > self.ack_due_at:
            return True
        return bool(self.due_at and now > self.due_at)


class LoopEvent(models.Model):
    """The full history of a loop: who did what when."""

    loop = models.ForeignKey(Loop, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    action = models.CharField(max_length=20)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["loop_id", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M} {self.action}"
