"""Checkpoints (卡口), self-reports (报备) and household screening campaigns (拉网式排查): the other three ways a
community finds the people arriving from elsewhere. Everyone found who needs verification enters the pushes
pipeline (``pushes.intake``) as one pushed person with a piece of evidence per finding.

- ``Checkpoint``: a checkpoint under a unit, with opening hours, joined one-to-one to the forces ``Post`` (kind
  checkpoint) created with it: duty at the checkpoint is that post's roster (who is on duty now is read from it).
- ``Registration``: one vehicle (plate, type) or person on foot passing a checkpoint; ``Traveller``: each person
  in it, sealed like a resident, with what matching found (resident, pushed, self-reported, risk area) and why
  they need verification.
- ``SelfReport``: a returning person's own report from the public page, with a receipt code to show at the
  checkpoint (its flood guard counts in ``core.ratelimit``, as every public page does).
- ``Campaign``: a directive whose households each answer a screening form (``ScreeningAnswer``), at the door or
  through the household link; a member change there is a ``RegisterChange`` the grid confirms.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.register.models import (
    MAX_LEVEL,
    SEGMENT,
    Household,
    PersonalContactMixin,
    PersonalIdMixin,
    Resident,
    Unit,
)

# A red or yellow health code or a fever at a checkpoint: the post's unit and the destination community are
# told at once (by SMS too, through quiet hours) and must report back within two hours.
ALERT = register(LoopKind("checkpoints.alert", "卡口异常", due_within=timedelta(hours=2), reminder_interval=900,
                          reminder_limit=3, urgent=True))

PATH_LENGTH = SEGMENT * MAX_LEVEL
FEVER = 37.3  # °C: at or above is a fever


class CheckpointKind(models.TextChoices):
    HIGHWAY_EXIT = "highway_exit", _("高速出口")
    RAILWAY_STATION = "railway_station", _("火车站")
    BUS_STATION = "bus_station", _("汽车站")
    VILLAGE_ENTRANCE = "village_entrance", _("村口")
    COMPOUND_GATE = "compound_gate", _("小区门口")
    OTHER = "other", _("其他卡口")


class Checkpoint(models.Model):
    """A checkpoint post under a unit. Opening hours: ``opens``–``closes`` local time (both empty: around the
    clock; ``closes`` before ``opens``: overnight)."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH_LENGTH, db_index=True)  # the unit's path (scoping, rollups)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=CheckpointKind.choices)
    # the forces post (kind checkpoint) whose roster staffs it: created with the checkpoint
    post = models.OneToOneField("forces.Post", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="checkpoint")
    opens = models.TimeField(null=True, blank=True)
    closes = models.TimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "name"]
        constraints = [models.UniqueConstraint(fields=["unit", "name"], name="one_checkpoint_name_per_unit")]

    def __str__(self) -> str:
        return self.name

    def is_open_at(self, moment: dt.time) -> bool:
        if self.opens is None or self.closes is None:
            return True
        if self.opens <= self.closes:
            return self.opens <= moment < self.closes
        return moment >= self.opens or moment < self.closes

    @property
    def hours_text(self) -> str:
        if self.opens is None or self.closes is None:
            return "24小时"
        return f"{self.opens:%H:%M}–{self.closes:%H:%M}"


class VehicleType(models.TextChoices):
    FOOT = "", _("步行")
    CAR = "car", _("小型汽车")
    NEW_ENERGY = "new_energy", _("新能源汽车")
    BUS = "bus", _("客车")
    TRUCK = "truck", _("货车")
    MOTORCYCLE = "motorcycle", _("摩托车")
    OTHER = "other", _("其他车辆")


class Registration(models.Model):
    """One vehicle (or person on foot) registered at a checkpoint. ``token`` is the form's one-time key: a
    repeated submission finds the registration already there instead of making a second one."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="registrations")
    path = models.CharField(max_length=PATH_LENGTH)  # the checkpoint's
    token = models.CharField(max_length=40)
    vehicle_type = models.CharField(max_length=12, choices=VehicleType.choices, blank=True)
    plate = models.CharField(max_length=10, blank=True, db_index=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                      related_name="+")
    registered_at = models.DateTimeField(db_index=True)
    persons = models.PositiveSmallIntegerField(default=0)
    from_risk = models.PositiveSmallIntegerField(default=0)
    to_verify = models.PositiveSmallIntegerField(default=0)
    abnormal = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-registered_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["checkpoint", "token"], name="one_registration_per_form")]
        indexes = [models.Index(fields=["checkpoint", "registered_at"])]

    def __str__(self) -> str:
        return f"{self.checkpoint_id}: {self.plate or _('步行')}"


class Seat(models.TextChoices):
    DRIVER = "driver", _("驾驶员")
    PASSENGER = "passenger", _("乘客")
    PEDESTRIAN = "pedestrian", _("步行")


class HealthCode(models.TextChoices):
    GREEN = "green", _("绿码")
    YELLOW = "yellow", _("黄码")
    RED = "red", _("红码")
    NONE = "none", _("未出示")


class Traveller(PersonalIdMixin, PersonalContactMixin):
    """A person of a registration: who, from where, to where, temperature, code, test proof, and what the
    matching found. ``reasons`` says why they need verification (empty: registered only)."""

    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS | PersonalIdMixin.SEALED_FIELDS

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="travellers")
    path = models.CharField(max_length=PATH_LENGTH)  # the checkpoint's
    seat = models.CharField(max_length=10, choices=Seat.choices)
    name = models.CharField(max_length=50)
    id_problem = models.CharField(max_length=200, blank=True)  # an ID number given but broken ("ID to fix")
    origin = models.CharField(max_length=200, blank=True)
    destination = models.CharField(max_length=200, blank=True)
    destination_unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    temperature = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    health_code = models.CharField(max_length=8, choices=HealthCode.choices, default=HealthCode.GREEN)
    test_hours = models.PositiveSmallIntegerField(null=True, blank=True)  # a negative test within N hours
    note = models.CharField(max_length=200, blank=True)
    risk_level = models.CharField(max_length=8, blank=True)
    risk_area = models.CharField(max_length=200, blank=True)
    resident = models.ForeignKey(Resident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    self_report = models.ForeignKey("SelfReport", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="travellers")
    already_pushed = models.BooleanField(default=False)
    reasons = models.CharField(max_length=300, blank=True)
    abnormal = models.BooleanField(default=False)
    pushed_person = models.ForeignKey("pushes.PushedPerson", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    # A person who needs verification is pushed by the worker (``checkpoints.push``) seconds after registration,
    # so the checkpoint never waits for routing and loop opening: "pending" until then, "done" after.
    push_state = models.CharField(max_length=8, blank=True, default="")
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["registration_id", "id"]
        indexes = [models.Index(fields=["push_state", "id"], name="traveller_push_todo")]

    def __str__(self) -> str:
        return self.name


class Transport(models.TextChoices):
    CAR = "car", _("自驾")
    TRAIN = "train", _("火车 / 高铁")
    PLANE = "plane", _("飞机")
    BUS = "bus", _("长途汽车")
    OTHER = "other", _("其他")


class SelfReportStatus(models.TextChoices):
    REPORTED = "reported", _("已报备")
    ARRIVED = "arrived", _("已到达（卡口核验）")
    CANCELLED = "cancelled", _("已取消")


class SelfReport(PersonalIdMixin, PersonalContactMixin):
    """报备 from the public page. ``code`` is the receipt code shown at a checkpoint (8 characters, no look-alikes);
    the receipt page's link is signed (``links``), so only the person who reported can change or cancel it."""

    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS | PersonalIdMixin.SEALED_FIELDS

    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=50)
    companions = models.JSONField(default=list, blank=True)  # [{"name", "relation"}]: household members travelling
    origin = models.CharField(max_length=200)
    transport = models.CharField(max_length=8, choices=Transport.choices)
    arrival_date = models.DateField()
    destination = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=SelfReportStatus.choices, default=SelfReportStatus.REPORTED)
    risk_level = models.CharField(max_length=8, blank=True)
    pushed_person = models.ForeignKey("pushes.PushedPerson", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Campaign(models.Model):
    """拉网式排查: a directive whose every household answers the screening form."""

    directive = models.OneToOneField("directives.Directive", on_delete=models.CASCADE, related_name="campaign")
    since = models.DateField()  # arrivals from outside since this day are asked for
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.directive_id)


class AnsweredVia(models.TextChoices):
    DOOR = "door", _("网格员上门")
    LINK = "link", _("居民自行填报")


class ScreeningAnswer(models.Model):
    """One household's answer to a campaign (the latest one counts; each change is audited)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="answers")
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")  # the household's grid
    path = models.CharField(max_length=PATH_LENGTH)
    present = models.PositiveSmallIntegerField()  # members living here now
    arrived = models.JSONField(default=list, blank=True)  # [{"name", "from", "date"}] arrived since campaign.since
    fever = models.BooleanField(default=False)  # fever or symptoms
    elderly_alone = models.BooleanField(default=False)
    needs = models.CharField(max_length=200, blank=True)
    member_change = models.CharField(max_length=200, blank=True)  # what the household says changed
    via = models.CharField(max_length=6, choices=AnsweredVia.choices)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    answered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "household"], name="one_answer_per_household")]
        indexes = [models.Index(fields=["campaign", "path"])]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.household_id}"


class ChangeState(models.TextChoices):
    PROPOSED = "proposed", _("待确认")
    CONFIRMED = "confirmed", _("已确认")
    REJECTED = "rejected", _("已驳回")


class RegisterChange(models.Model):
    """A member change reported in a screening: proposed, never applied until the grid confirms it."""

    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=PATH_LENGTH)
    answer = models.ForeignKey(ScreeningAnswer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.CharField(max_length=200)  # what changed, in the household's words (or a summary)
    # the change itself, applied through the register's own actions when the grid confirms it:
    # [{"name", "relation", "id_sealed", "id_masked", "phone_sealed", "phone_masked"}]: sealed values as hex
    adds = models.JSONField(default=list, blank=True)
    leaves = models.JSONField(default=list, blank=True)  # [{"resident_id", "name", "status"}]
    present_before = models.PositiveSmallIntegerField(default=0)
    present_after = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=ChangeState.choices, default=ChangeState.PROPOSED)
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-proposed_at"]
        indexes = [models.Index(fields=["path", "state"])]

    def __str__(self) -> str:
        return f"{self.household_id}: {self.text}"
