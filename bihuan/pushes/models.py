"""Big-data push lists (大数据推送): the daily lists of people arriving from elsewhere, their routing to
the right unit, phone verification (核查, a loop of kind ``push.verification``), transfers between units
(转办 / 退回) and risk classification from versioned policy data.

Personal values (ID numbers, phones) are sealed with lookup hashes beside them, exactly as in the register;
the raw rows of an imported file are kept only with those values masked.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.loops.models import OPEN_STATES, LoopState
from bihuan.policy.models import Measure
from bihuan.register.models import (
    MAX_LEVEL,
    SEGMENT,
    LookupHashField,
    PersonalContactMixin,
    PersonalIdMixin,
    Resident,
    Unit,
)

# A new pushed person is told to the grid (or unit) that must verify them at once.
VERIFICATION = register(LoopKind("push.verification", "核查", reminder_interval=1800, reminder_limit=3))
# The receiving unit is told at once (the engine's notice: who sent the person, why, by when).
TRANSFER = register(LoopKind("push.transfer", "转办", reminder_interval=1800, reminder_limit=2))


class BatchState(models.TextChoices):
    PENDING = "pending", _("等待处理")
    RUNNING = "running", _("处理中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("失败")


class PushBatch(models.Model):
    """One uploaded file (or API upload) of pushed records."""

    source = models.CharField(max_length=100)  # 推送来源 / 数据来源, e.g. 省大数据中心
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_data = models.BinaryField()  # kept until processed, then emptied (it holds clear personal data)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # the importing unit
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    column_mapping = models.JSONField(default=dict, blank=True)  # header text -> field name
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)  # progress
    imported = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at"]
        constraints = [models.UniqueConstraint(fields=["unit", "source", "file_sha256"], name="one_batch_per_file")]

    def __str__(self) -> str:
        return f"{self.source} {self.file_name}"


class SourceMapping(models.Model):
    """A column mapping staff saved for a source: the next file from it is read the same way."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=100)
    mapping = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit", "source"], name="one_mapping_per_source")]

    def __str__(self) -> str:
        return self.source


class RowResult(models.TextChoices):
    IMPORTED = "imported", _("已导入")
    MERGED = "merged", _("已合并")
    REJECTED = "rejected", _("已拒绝")


class PushRow(models.Model):
    """Every row of every file gets a result; totals reconcile (rows = imported + merged + rejected)."""

    batch = models.ForeignKey(PushBatch, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()  # as the spreadsheet shows it
    result = models.CharField(max_length=10, choices=RowResult.choices)
    reason = models.CharField(max_length=300, blank=True)
    field = models.CharField(max_length=40, blank=True)  # the field a rejection is about
    person = models.ForeignKey("PushedPerson", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    masked = models.JSONField(default=dict)  # the row as read, personal values masked

    class Meta:
        ordering = ["batch_id", "row_number"]
        constraints = [models.UniqueConstraint(fields=["batch", "row_number"], name="one_result_per_row")]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.row_number} {self.result}"


class RouteMethod(models.TextChoices):
    RESIDENT = "resident", _("匹配户籍居民")
    ADDRESS = "address", _("匹配地址")
    MANUAL = "manual", _("人工分派")
    TRANSFER = "transfer", _("转办")


class PushedPerson(PersonalIdMixin, PersonalContactMixin):
    """A person pushed for verification. Pushes of the same person within the window join this record."""

    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS | PersonalIdMixin.SEALED_FIELDS

    # Written for every person of every pushed list: indexed once, not twice (LookupHashField).
    id_hash = LookupHashField(max_length=40, blank=True, db_index=True)
    phone_hash = LookupHashField(max_length=40, blank=True, db_index=True)
    name = models.CharField(max_length=50)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    origin = models.CharField(max_length=200, blank=True)  # 来源地 / 出发地
    via = models.CharField(max_length=300, blank=True)  # 途经地
    arrival_date = models.DateField(null=True, blank=True)
    address_text = models.CharField(max_length=300, blank=True)  # 现住址 as pushed
    township_text = models.CharField(max_length=100, blank=True)  # 所属乡镇（街道） as pushed
    community_text = models.CharField(max_length=100, blank=True)  # 所属社区（村） as pushed
    sources = models.CharField(max_length=300, blank=True)  # every source that pushed them, "|"-separated
    first_batch = models.ForeignKey(PushBatch, on_delete=models.PROTECT, related_name="+")
    first_pushed_at = models.DateTimeField(db_index=True)  # the daily report's "pushed that day"
    last_pushed_at = models.DateTimeField()
    times_pushed = models.PositiveIntegerField(default=1)
    resident = models.ForeignKey(Resident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Where the person is now handled (None = the command office's manual-dispatch queue).
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, blank=True, db_index=True)
    route_method = models.CharField(max_length=10, choices=RouteMethod.choices, blank=True)
    route_reason = models.CharField(max_length=300, blank=True)
    routed_at = models.DateTimeField(null=True, blank=True)
    # "ID to fix" (身份证号待修正): the ID number given was broken (Excel, a checksum); the person is verified by
    # phone and the verifier records the right number (``actions.do_fix_id_number``), which clears this.
    id_problem = models.CharField(max_length=200, blank=True, default="", db_default="")

    @property
    def route_text(self) -> str:
        """How the person got to their unit, in words: ``人工分派：东岳社区（…）`` — the method once."""
        label = str(self.get_route_method_display()) if self.route_method else ""
        reason = self.route_reason
        for prefix in {label, "人工分派"} - {""}:  # reasons written before the method was shown beside them
            for sep in ("：", ": ", ":"):
                if reason.startswith(prefix + sep):
                    reason = reason[len(prefix) + len(sep):]
        return f"{label}：{reason}" if label and reason else (label or reason)

    class Meta:
        # phone_hash and id_hash are indexed by the mixins (de-duplication looks people up by them).
        indexes = [models.Index(fields=["name", "birth_date"])]

    def __str__(self) -> str:
        return self.name


class Evidence(models.Model):
    """One finding of a pushed person by a source other than a pushed file — a checkpoint registration (卡口), a
    self-report (报备), a household screening answer (排查) — pointing at its record in its own app. A person
    found several ways is one pushed person with several pieces of evidence, verified once; the rows of pushed
    files (``PushRow``) are that person's big-data evidence (``selectors.evidence_of`` lists both)."""

    person = models.ForeignKey(PushedPerson, on_delete=models.CASCADE, related_name="evidence")
    source = models.CharField(max_length=100)  # 卡口 / 报备 / 排查
    ref_type = models.CharField(max_length=60)  # the record's model label, e.g. checkpoints.traveller
    ref_id = models.BigIntegerField()
    summary = models.CharField(max_length=300, blank=True)  # what was found, no clear personal values
    reasons = models.CharField(max_length=300, blank=True)  # why the person needs verification
    unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")  # where found
    found_at = models.DateTimeField()

    class Meta:
        ordering = ["person_id", "found_at", "id"]
        constraints = [models.UniqueConstraint(fields=["ref_type", "ref_id"], name="one_evidence_per_record")]
        indexes = [models.Index(fields=["person", "found_at"])]

    def __str__(self) -> str:
        return f"{self.person_id}: {self.source} {self.ref_type}#{self.ref_id}"


class Outcome(models.TextChoices):
    NEW_CONTROL = "new_control", _("需新增管控")
    ELSEWHERE_IN_DISTRICT = "elsewhere_in_district", _("居住在区内其他地方（转办）")
    OUTSIDE_DISTRICT = "outside_district", _("居住在区外（移交）")
    NO_SUCH_PERSON = "no_such_person", _("查无此人 / 号码错误")
    LEFT = "left", _("已离开")
    ALREADY_CONTROLLED = "already_controlled", _("已在管控中")
    ALREADY_RELEASED = "already_released", _("已解除管控")
    NO_CONTROL_NEEDED = "no_control_needed", _("无需管控")
    VERIFYING = "verifying", _("核查中")
    OTHER = "other", _("其他")


class Verification(models.Model):
    """The phone verification of one pushed person by the unit now handling them (one per person; it
    follows the person through transfers). Its deadline, reminders and escalation live in the loop."""

    person = models.OneToOneField(PushedPerson, on_delete=models.CASCADE, related_name="verification")
    loop = models.ForeignKey("loops.Loop", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    call_attempts = models.JSONField(default=list, blank=True)  # [{"at": iso, "result": reached|no_answer|…}]
    origin = models.CharField(max_length=200, blank=True)
    visited = models.JSONField(default=list, blank=True)  # [{"place", "from", "to"}] in the last N days
    arrival_date = models.DateField(null=True, blank=True)
    destination = models.CharField(max_length=200, blank=True)
    compound = models.CharField(max_length=100, blank=True)
    building = models.CharField(max_length=20, blank=True)
    entrance = models.CharField(max_length=20, blank=True)
    room = models.CharField(max_length=20, blank=True)
    dwelling_type = models.CharField(max_length=30, blank=True)
    cohabitants = models.PositiveSmallIntegerField(null=True, blank=True)
    health_status = models.CharField(max_length=100, blank=True)
    symptoms = models.JSONField(default=list, blank=True)
    tests = models.JSONField(default=list, blank=True)  # [{"date", "result"}]
    vaccine_doses = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, default=Outcome.VERIFYING)
    outcome_detail = models.JSONField(default=dict, blank=True)  # each outcome's required fields
    recommended_measure = models.CharField(max_length=24, choices=Measure.choices, blank=True)
    recommendation_basis = models.CharField(max_length=300, blank=True)  # policy version and risk area used
    measure = models.CharField(max_length=24, choices=Measure.choices, blank=True)  # what staff confirmed
    override_reason = models.CharField(max_length=300, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    verified_at = models.DateTimeField(null=True, blank=True, db_index=True)  # the daily report's "verified"
    # A completed report is amended, not locked: each amendment keeps the version it replaced here
    # ([{"at", "by", "outcome", "detail", "measure", "verified_at", "verified_by", "fields": {name: old value}}]).
    amendments = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.person_id}: {self.outcome}"


class TransferState(models.TextChoices):
    """A transfer's status, read from its loop (the loop is the one record of it)."""

    PENDING = "pending", _("待接收")
    ACCEPTED = "accepted", _("已接收")
    RETURNED = "returned", _("已退回")


# The loop states behind each transfer status: open = waiting for an answer; closed = accepted (the receiver
# signed, reported and closed it in one step); returned = 退回 (a cancelled loop counts as returned too).
TRANSFER_LOOP_STATES = {
    TransferState.PENDING: tuple(OPEN_STATES),
    TransferState.ACCEPTED: (LoopState.REPORTED, LoopState.CLOSED),
    TransferState.RETURNED: (LoopState.RETURNED, LoopState.CANCELLED),
}


def transfer_state_of(loop_state: str | None) -> str:
    for status, states in TRANSFER_LOOP_STATES.items():
        if loop_state in states:
            return status
    return TransferState.PENDING


def transfer_state_q(*statuses: str, prefix: str = "") -> models.Q:
    """Transfers (``prefix`` = the path to them, e.g. ``"transfers__"``) whose loop is in one of these statuses."""
    return models.Q(**{f"{prefix}loop__state__in": [s for st in statuses for s in TRANSFER_LOOP_STATES[st]]})


class TransferQuerySet(models.QuerySet):
    def in_state(self, *statuses: str):
        """Transfers whose loop is in the states of these statuses (``in_state(TransferState.PENDING)``)."""
        return self.filter(transfer_state_q(*statuses))

    def pending(self):
        return self.in_state(TransferState.PENDING)

    def with_status(self):
        """Annotate ``status`` (a ``TransferState`` value) from the loop, for lists and ``values()``."""
        whens = [models.When(loop__state__in=states, then=models.Value(status))
                 for status, states in TRANSFER_LOOP_STATES.items()]
        return self.annotate(status=models.Case(*whens, default=models.Value(TransferState.PENDING),
                                                output_field=models.CharField()))


class Transfer(models.Model):
    """转办 from one unit to another; the receiver signs (a loop with a deadline) or returns it (退回).
    Its status is its loop's state (``state``): select the loop with the transfers you list."""

    person = models.ForeignKey(PushedPerson, on_delete=models.CASCADE, related_name="transfers")
    from_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    to_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300)
    loop = models.ForeignKey("loops.Loop", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)
    return_reason = models.CharField(max_length=300, blank=True)
    ping_pong = models.BooleanField(default=False)  # A → B → A: flagged to the common parent unit

    objects = TransferQuerySet.as_manager()

    class Meta:
        ordering = ["person_id", "id"]

    def __str__(self) -> str:
        return f"{self.person_id}: {self.from_unit_id} → {self.to_unit_id}"

    state_q = staticmethod(transfer_state_q)

    @property
    def state(self) -> str:
        """pending / accepted / returned, from the loop's state (a ``TransferState`` value)."""
        return transfer_state_of(self.loop.state if self.loop_id else None)

    def get_state_display(self) -> str:
        return str(TransferState(self.state).label)
