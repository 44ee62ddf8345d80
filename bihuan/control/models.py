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
from bihuan.loops.models import OPEN_STATES, LoopState
from bihuan.register.models import MAX_LEVEL, SEGMENT, PersonalContactMixin, Resident, Unit


def localized(name_zh: str, name_en: str) -> str:
    """A name kept in both languages as data, in the active one (Chinese unless the user chose English)."""
    return name_en if (get_language() or "").startswith("en") and name_en else name_zh


class ControlTypeQuerySet(models.QuerySet):
    def current(self):
        """The version of each type in force: what new cases, moving up and the forms offer."""
        return self.filter(is_current=True)


class ControlType(models.Model):
    """centralized_quarantine / home_isolation / home_monitoring, and their defaults.

    Types are data the district's command office edits on pages (``types.py``, ``Perm.EDIT_POLICY``), and they
    are **versioned**: an edit never changes a row, it adds the next version of the same ``code`` and makes it
    the current one; cases keep pointing at the version they were opened with, so a checklist in use never
    changes under an open case. Deactivating a type leaves it with no current version (nothing new is opened
    with it; open cases run on). Every version is audited (``control.type_version`` / ``control.type_retired``).
    """

    code = models.CharField(max_length=30)
    version = models.PositiveSmallIntegerField(default=1)
    is_current = models.BooleanField(default=True)  # the version in force for this code
    name_zh = models.CharField(max_length=50)
    name_en = models.CharField(max_length=80)
    rank = models.PositiveSmallIntegerField()  # stricter = higher; cases move up only to a higher rank
    checkins_per_day = models.PositiveSmallIntegerField(default=2)
    # The measures checklist: [{"key": "card_posted", "label": "张贴隔离卡", "photo": false}, …]
    measures = models.JSONField(default=list)
    at_home = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True)  # why this version was made
    created_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    objects = ControlTypeQuerySet.as_manager()

    class Meta:
        ordering = ["-rank", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="one_control_type_version"),
            models.UniqueConstraint(fields=["code"], condition=models.Q(is_current=True),
                                    name="one_current_control_type"),
        ]

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


# The loop kinds of control and care, with their policy (the engine reads deadlines, reminders and escalation from
# here). Owners (the loop's unit) are told by the engine when a loop opens; control tells the others itself —
# the five-for-one team members of other units and those with only a phone, and the person.
SERVICE_ACK = dt.timedelta(minutes=30)  # the grid signs for (or assigns) a request within half an hour
SERVICE_DUE = {"medicine": dt.timedelta(hours=2), "medical": dt.timedelta(hours=2)}  # by ServiceKind value
SERVICE_DUE_DEFAULT = dt.timedelta(hours=4)
SERVICE = register(LoopKind("control.service", "服务请求", ack_within=SERVICE_ACK, due_within=SERVICE_DUE_DEFAULT,
                            reminder_interval=1800, reminder_limit=3))  # subject_id = the ServiceRequest
# An alert: the community signs within 15 minutes and reports within the hour; reminded every 15 minutes twice,
# then the township is told (督办). Urgent: by SMS too, through quiet hours.
_ALERT_POLICY = {"ack_within": dt.timedelta(minutes=15), "due_within": dt.timedelta(hours=1), "reminder_interval": 900,
                 "reminder_limit": 2, "urgent": True}
ALERT = register(LoopKind("control.alert", "异常告警", **_ALERT_POLICY))  # subject_id = the CheckIn
TEST_POSITIVE = register(LoopKind("control.test_positive", "阳性告警", **_ALERT_POLICY))  # subject_id = the TestSample
TEST_MISSED = register(LoopKind("control.test_missed", "漏检告警", **_ALERT_POLICY))  # subject_id = the TestSample
# A check-in still missing after the grace period: the case's unit (its grid) asks the person by phone or at the
# door and records it for them within two hours; reminded twice, then the unit above is told. Closed by the
# check-in. subject_id = the MissedCheckIn.
MISSED_CHECKIN = register(LoopKind("control.missed_checkin", "未按时打卡", due_within=dt.timedelta(hours=2),
                                   reminder_interval=1800, reminder_limit=2))
ALERT_KINDS = (ALERT, TEST_POSITIVE, TEST_MISSED, MISSED_CHECKIN)  # listed and resolved on the today page


class ServiceRequestQuerySet(models.QuerySet):
    """Service requests by their loop's state — the loop is the one record of where a request stands."""

    def unconfirmed(self):
        """Not confirmed by the person yet: the loop is open or reported."""
        return self.filter(loop__state__in=(*OPEN_STATES, LoopState.REPORTED))

    def pending(self):
        """Not done yet (staff have not reported it)."""
        return self.filter(loop__state__in=OPEN_STATES)


class ServiceRequest(models.Model):
    """A 24-hour service request; where it stands — assigned, done, confirmed, late — is its loop (kind SERVICE):
    assigned = the loop's ``owner_user``, done = ``reported``, confirmed = ``closed``."""

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="service_requests")
    kind = models.CharField(max_length=12, choices=ServiceKind.choices)
    text = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")  # None: the person through their link
    requested_at = models.DateTimeField(auto_now_add=True)
    loop = models.ForeignKey("loops.Loop", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = ServiceRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.case_id}: {self.kind}"

    @property
    def assigned_to(self):
        """The volunteer or team member the request is handed to (the loop's owner person)."""
        return self.loop.owner_user if self.loop_id else None

    @property
    def done_at(self):
        """When staff said it is done (the loop's report), if it is done."""
        if not self.loop_id or self.loop.state not in (LoopState.REPORTED, LoopState.CLOSED):
            return None
        return self.loop.reported_at or self.loop.closed_at

    @property
    def confirmed_at(self):
        """When the person confirmed it (the loop closed), if they did."""
        return self.loop.closed_at if self.loop_id and self.loop.state == LoopState.CLOSED else None


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


class MissedCheckInQuerySet(models.QuerySet):
    def with_resolved_at(self):
        """``resolved_at``: when the slot's check-in came in after all (it closes the slot's loop), or None."""
        late = CheckIn.objects.filter(case_id=models.OuterRef("case_id"), date=models.OuterRef("date"),
                                      slot=models.OuterRef("slot")).values("at")[:1]
        return self.annotate(resolved_at=models.Subquery(late))

    def unresolved_at(self, at):
        """Slots still missing at ``at`` (no check-in for them by then)."""
        return self.exclude(models.Exists(CheckIn.objects.filter(
            case_id=models.OuterRef("case_id"), date=models.OuterRef("date"), slot=models.OuterRef("slot"),
            at__lte=at)))


class MissedCheckIn(models.Model):
    """A check-in slot whose deadline passed with no check-in (the ``control.checkins`` worker writes them
    set-based, one per case, day and slot). It is the subject of a ``MISSED_CHECKIN`` loop, which holds where
    it stands: the row itself keeps only the two steps control takes for people who are not the loop's owner.

    - at the deadline the person is reminded once (``reminded_at``; SMS when they have a phone);
    - at ``alert_at`` (deadline + grace), if the slot is still missing and the case open, the loop opens at the
      case's unit (the engine tells its staff, reminds them and then the unit above) and the five-for-one team
      members outside that unit are told (``handed_at``: this step was taken, with or without a loop);
    - a check-in for the slot, even late, closes the loop; a case that ends cancels it.
    """

    case = models.ForeignKey(ControlCase, on_delete=models.CASCADE, related_name="missed_checkins")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)  # the case's path: rollups without a join
    date = models.DateField()
    slot = models.CharField(max_length=2, choices=CheckInSlot.choices)
    due_at = models.DateTimeField()  # the slot's deadline
    alert_at = models.DateTimeField()  # the loop opens from then on if still missing
    reminded_at = models.DateTimeField(null=True, blank=True)
    handed_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects = MissedCheckInQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "date", "slot"], name="one_miss_per_slot")]
        indexes = [models.Index(fields=["date", "path"]), models.Index(fields=["handed_at", "alert_at"])]

    def __str__(self) -> str:
        return f"{self.case_id} {self.date} {self.slot}: missed"
