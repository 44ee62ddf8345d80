"""Graded, classified control (分级分类管控) and care: a control case per person under centralized
quarantine, home isolation or home health monitoring, with its phases, measures checklist, five-for-one
team (五包一), daily check-ins, test schedule, 24-hour service requests and release (解除隔离).

Case types are data (``ControlType``). A case belongs to the unit that answers for it (normally the
person's community or grid) and carries that unit's ``path`` for scoping and rollups, like every record.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.register.models import MAX_LEVEL, SEGMENT, PersonalContactMixin, Resident, Unit


def localized(name_zh: str, name_en: str) -> str:
    """A name kept in both languages as data, in the active one (Chinese unless the user chose English)."""
    return name_en if (get_language() or "").startswith("en") and name_en else name_zh


class ControlType(models.Model):
    """centralized_quarantine / home_isolation / home_monitoring, and their defaults."""

    code = models.CharField(max_length=30, unique=True)
    name_zh = models.CharField(max_length=50)
    name_en = models.CharField(max_length=80)
    rank = models.PositiveSmallIntegerField()  # stricter = higher; cases move up only to a higher rank
    checkins_per_day = models.PositiveSmallIntegerField(default=2)
    # The measures checklist: [{"key": "card_posted", "label": "张贴隔离卡", "photo": false}, …]
    measures = models.JSONField(default=list)
    at_home = models.BooleanField(default=True)

    class Meta:
        ordering = ["-rank"]

    def __str__(self) -> str:
        return self.name_zh

    @property
    def label(self) -> str:
        return localized(self.name_zh, self.name_en)


class CaseState(models.TextChoices):
    ACTIVE = "active", _("管控中")
    RELEASE_PROPOSED = "release_proposed", _("待解除")
    RELEASED = "released", _("已解除")
    MOVED_UP = "moved_up", _("已升级管控")
    # This phase ended with its tests negative and the next phase of the chain opened as a new case
    # (e.g. 7 days centralized, then 3 days home monitoring).
    PHASE_ENDED = "phase_ended", _("已转入下一阶段")
    CANCELLED = "cancelled", _("已撤销")


OPEN_CASE_STATES = (CaseState.ACTIVE, CaseState.RELEASE_PROPOSED)


class ControlCase(PersonalContactMixin):
    """One person under one measure. Moving up (home monitoring → home isolation → centralized) closes
    this case as ``moved_up`` and opens a new one that points back at it (``previous``)."""

    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS

    type = models.ForeignKey(ControlType, on_delete=models.PROTECT, related_name="cases")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, db_index=True)
    resident = models.ForeignKey(Resident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pushed_person = models.ForeignKey("pushes.PushedPerson", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    name = models.CharField(max_length=50)
    id_masked = models.CharField(max_length=20, blank=True)
    # Phases chained by the protocol, e.g. [{"type": "centralized_quarantine", "days": 7, "tests": [1,2,3,5,7]},
    # {"type": "home_monitoring", "days": 3, "tests": [3]}]; this case is phase ``phase_index`` of them.
    phases = models.JSONField(default=list)
    phase_index = models.PositiveSmallIntegerField(default=0)
    protocol_name = models.CharField(max_length=100, blank=True)
    start_date = models.DateField()
    end_date = models.DateField()  # last day of this phase (inclusive)
    site_kind = models.CharField(max_length=10, choices=[("home", _("居家")), ("hotel", _("集中隔离点"))])
    site_address = models.CharField(max_length=200)
    site_room = models.CharField(max_length=20, blank=True)
    state = models.CharField(max_length=20, choices=CaseState.choices, default=CaseState.ACTIVE)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_cases")
    reason = models.CharField(max_length=300, blank=True)  # why it was opened / moved up
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "path"]), models.Index(fields=["state", "type"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.type_id})"

    def day_number(self, on: dt.date) -> int:
        """Day 1 is the start date."""
        return (on - self.start_date).days + 1

    @property
    def phase(self) -> dict:
        return self.phases[self.phase_index] if self.phases else {}

    @property
    def test_days(self) -> list[int]:
        return list(self.phase.get("tests", []))


class MeasureItem(models.Model):
    """One item of the measures checklist: isolation card posted, agreement signed (photo), sensor…"""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="measure_items")
    key = models.CharField(max_length=40)
    label = models.CharField(max_length=100)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    photo = models.FileField(upload_to="control/measures/%Y/%m/", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "key"], name="one_item_per_measure")]

    def __str__(self) -> str:
        return self.label


class TeamSlot(models.TextChoices):
    CADRE = "cadre", _("社区干部")
    GRID_WORKER = "grid_worker", _("网格员")
    DOCTOR = "doctor", _("医生")
    POLICE = "police", _("民警")
    VOLUNTEER = "volunteer", _("志愿者 / 家属")


class TeamMember(PersonalContactMixin):
    """A five-for-one (五包一) slot filled by a named person: a staff account or a name and phone."""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="team")
    slot = models.CharField(max_length=20, choices=TeamSlot.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="control_teams")
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "slot"], name="one_member_per_slot")]

    def __str__(self) -> str:
        return f"{self.get_slot_display()}: {self.name}"


class CheckInSlot(models.TextChoices):
    MORNING = "am", _("上午")
    AFTERNOON = "pm", _("下午")


class CheckIn(models.Model):
    """A temperature and symptom check-in, by the person (signed link) or a team member."""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="checkins")
    date = models.DateField()
    slot = models.CharField(max_length=2, choices=CheckInSlot.choices)
    temperature = models.DecimalField(max_digits=4, decimal_places=1)
    symptoms = models.JSONField(default=list, blank=True)
    abnormal = models.BooleanField(default=False)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # None: the person through their link
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "date", "slot"], name="one_checkin_per_slot")]
        indexes = [models.Index(fields=["date", "abnormal"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.date} {self.slot}: {self.temperature}"


class TestResult(models.TextChoices):
    PENDING = "pending", _("待出结果")
    NEGATIVE = "negative", _("阴性")
    POSITIVE = "positive", _("阳性")
    MISSED = "missed", _("未采样")


class TestSample(models.Model):
    """One scheduled door-to-door test (上门核酸检测) of a case: day N of the phase, and its result."""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="tests")
    day = models.PositiveSmallIntegerField()
    date = models.DateField(db_index=True)
    result = models.CharField(max_length=10, choices=TestResult.choices, blank=True)  # "" = not sampled yet
    sampled_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "day"], name="one_test_per_day")]
        ordering = ["case_id", "day"]

    def __str__(self) -> str:
        return f"{self.case_id} day {self.day}: {self.result or 'scheduled'}"


class ServiceKind(models.TextChoices):
    GROCERIES = "groceries", _("代购生活物资")
    MEDICINE = "medicine", _("代购药品")
    MEDICAL = "medical", _("就医")
    RUBBISH = "rubbish", _("垃圾清运")
    OTHER = "other", _("其他")


# Services and alerts tell the case's team and community themselves (with the person's place and phone).
SERVICE = register(LoopKind("control.service", "服务请求", reminder_interval=1800, reminder_limit=3,
                            notify_on_open=False))
_ALERT_POLICY = {"ack_within": dt.timedelta(minutes=15), "due_within": dt.timedelta(hours=1), "reminder_interval": 900,
                 "reminder_limit": 2, "notify_on_open": False, "urgent": True}
ALERT = register(LoopKind("control.alert", "异常告警", **_ALERT_POLICY))  # subject_id = the CheckIn
TEST_POSITIVE = register(LoopKind("control.test_positive", "阳性告警", **_ALERT_POLICY))  # subject_id = the TestSample
TEST_MISSED = register(LoopKind("control.test_missed", "漏检告警", **_ALERT_POLICY))  # subject_id = the TestSample
ALERT_KINDS = (ALERT, TEST_POSITIVE, TEST_MISSED)


class ServiceRequest(models.Model):
    """A 24-hour service request; its deadline, reminders and escalation live in a loop (kind SERVICE)."""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="service_requests")
    kind = models.CharField(max_length=12, choices=ServiceKind.choices)
    text = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")  # None: the person through their link
    requested_at = models.DateTimeField(auto_now_add=True)
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    loop = models.ForeignKey("loops.Loop", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    done_at = models.DateTimeField(null=True, blank=True)  # staff say it is done
    confirmed_at = models.DateTimeField(null=True, blank=True)  # the person confirms (closes the loop)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.kind}"


class CareVisit(models.Model):
    """The daily care visit (关爱走访) to a key-group resident (elderly living alone and the like) or a person
    under home control: asked whether they need anything (food bought, medicine …) — one per person a day."""

    resident = models.ForeignKey(Resident, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(ControlCase, null=True, blank=True, on_delete=models.CASCADE, related_name="care_visits")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # the grid
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)
    date = models.DateField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=300, blank=True)
    needs = models.JSONField(default=list, blank=True)  # ServiceKind values asked for, e.g. ["groceries"]

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(resident__isnull=False) | models.Q(case__isnull=False),
                                   name="care_visit_has_a_person"),
            models.UniqueConstraint(fields=["resident", "date"], condition=models.Q(resident__isnull=False),
                                    name="one_care_visit_per_resident_and_day"),
            models.UniqueConstraint(fields=["case", "date"], condition=models.Q(resident__isnull=True),
                                    name="one_care_visit_per_case_and_day"),
        ]
        indexes = [models.Index(fields=["path", "date"])]

    def __str__(self) -> str:
        return f"{self.resident_id or self.case_id} {self.date}"


class MissedCheckIn(models.Model):
    """A check-in slot whose deadline passed with no check-in: the ``control.checkins`` worker's job row.

    The person is reminded once (``reminded_at``; by SMS when they have a phone), then, if the slot is still
    missing at ``alert_at`` (deadline + grace period), the team is alerted once (``alerted_at``). A late
    check-in resolves the row (``resolved_at``). Rows are written set-based, one per case, day and slot.
    """

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="missed_checkins")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)  # the case's path: rollups without a join
    date = models.DateField()
    slot = models.CharField(max_length=2, choices=CheckInSlot.choices)
    due_at = models.DateTimeField()  # the slot's deadline
    alert_at = models.DateTimeField()  # the team is alerted from then on if still missing
    reminded_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)  # checked in late, or the case closed
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "date", "slot"], name="one_miss_per_slot")]
        indexes = [models.Index(fields=["date", "path"]), models.Index(fields=["alerted_at", "alert_at"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.date} {self.slot}: missed"
