"""People on the ground (人员力量): helpers who are not staff accounts, the teams they form, the posts they staff on
a duty roster, the tasks they are given, the public places they disinfect and the notices they spread.

Every row carries the ``path`` of the unit it belongs to (a helper: the community they serve; a shift: its post's
unit), so scoping is ``register.access.scoped`` and rollups are one GROUP BY plus a walk up the tree.

Loops (all through ``bihuan.loops``): a report-in waits for the community's approval (``REPORT_IN``), a task runs
to its report and close-out (``TASK``), a shift whose start passed with nobody on duty is escalated to the post's
unit (``MISSED_START``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.loops.kinds import LoopKind, register
from bihuan.register.models import MAX_LEVEL, SEGMENT, PersonalContactMixin, PersonalIdMixin, Staff, Unit

PATH = SEGMENT * MAX_LEVEL

# 报到审核: the community approves or rejects within a day; reminded twice, then the township is told.
REPORT_IN = register(LoopKind("forces.report_in", "报到审核", due_within=dt.timedelta(hours=24),
                              reminder_interval=4 * 3600, reminder_limit=2))
# 任务: publicity, disinfection, delivery … (deadline given per task).
TASK = register(LoopKind("forces.task", "任务", reminder_interval=3600, reminder_limit=2))
# 缺岗: a shift's start passed with nobody on duty. The helper was reminded at the start; this loop is the
# escalation to the post's unit (opened once per shift, told at once); one more reminder, then the level above.
MISSED_START = register(LoopKind("forces.missed_start", "缺岗", due_within=dt.timedelta(minutes=30),
                                 reminder_interval=1800, reminder_limit=1, urgent=True))

MISSED_GRACE = dt.timedelta(minutes=10)  # a shift's start is "missed" this long after it with nobody on duty
MAX_HOURS_PER_DAY = 12  # more than this on one day (shifts counted on the day they start) is a conflict


class HelperKind(models.TextChoices):
    CADRE = "cadre", _("机关干部")
    PARTY_MEMBER = "party_member", _("党员")
    YOUTH = "youth", _("青年志愿者")
    VETERAN = "veteran", _("退役军人")
    VOLUNTEER = "volunteer", _("志愿者")
    RESCUE = "rescue", _("救援队员")
    PROPERTY = "property", _("物业人员")


class HelperStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    ACTIVE = "active", _("在岗")
    PAUSED = "paused", _("暂停")
    LEFT = "left", _("已离开")
    REJECTED = "rejected", _("未通过")


class Helper(PersonalIdMixin, PersonalContactMixin):
    """A person of the field force without a staff account (optionally with a login: ``user``).

    ``unit`` is the community (or a unit below it) they serve; ``home_unit`` the department or township they
    belong to (双报到), or ``home_org`` in words. The same phone or ID number reporting twice is one helper."""

    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS | PersonalIdMixin.SEALED_FIELDS

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    kind = models.CharField(max_length=16, choices=HelperKind.choices)
    name = models.CharField(max_length=50)
    home_unit = models.ForeignKey(Unit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    home_path = models.CharField(max_length=PATH, blank=True, db_index=True)
    home_org = models.CharField(max_length=100, blank=True)
    party_member = models.BooleanField(default=False)
    skills = models.CharField(max_length=200, blank=True)
    availability = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=HelperStatus.choices, default=HelperStatus.PENDING)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="helper")
    reported_at = models.DateTimeField(null=True, blank=True)
    reports = models.PositiveSmallIntegerField(default=0)  # how many times they reported in (merged)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "name", "id"]
        indexes = [models.Index(fields=["path", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def organisation(self) -> str:
        return self.home_unit.name if self.home_unit_id else self.home_org


class Team(models.Model):
    """服务队: a team under any unit, with a leader and members (a helper may be in several)."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=200, blank=True)
    leader = models.ForeignKey(Helper, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    members = models.ManyToManyField(Helper, through="TeamMember", related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "name"]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    helper = models.ForeignKey(Helper, on_delete=models.CASCADE)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "helper"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.team_id}: {self.helper_id}"


class PostKind(models.TextChoices):
    CHECKPOINT = "checkpoint", _("卡点")
    GATE = "gate", _("小区门岗")
    SAMPLING = "sampling", _("核酸采样点")
    BUILDING = "building", _("楼栋门岗")
    PUBLICITY = "publicity", _("宣传路线")
    DELIVERY = "delivery", _("物资配送")


class Post(models.Model):
    """岗位: a place under a unit staffed every day from ``start_hour`` to ``end_hour`` (local time; an end at or
    before the start runs past midnight; 0–24 is round the clock) by ``required`` people at a time."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=PostKind.choices)
    start_hour = models.PositiveSmallIntegerField(default=0)
    end_hour = models.PositiveSmallIntegerField(default=24)
    required = models.PositiveSmallIntegerField(default=1)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(start_hour__lte=23, end_hour__gte=1, end_hour__lte=24),
                                   name="post_hours_in_a_day"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def hours_per_day(self) -> int:
        return (self.end_hour - self.start_hour) if self.end_hour > self.start_hour else (24 - self.start_hour
                                                                                         + self.end_hour)


class Shift(models.Model):
    """One person (a helper or a staff member) on one post from ``starts_at`` to ``ends_at``; ``on_at`` /
    ``off_at`` are the taps on the phone (hours served are off − on)."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="shifts")
    path = models.CharField(max_length=PATH)  # the post's path
    helper = models.ForeignKey(Helper, null=True, blank=True, on_delete=models.CASCADE, related_name="shifts")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    on_at = models.DateTimeField(null=True, blank=True)
    off_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)  # the person was reminded at the start
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(helper__isnull=False) | models.Q(staff__isnull=False),
                                   name="shift_has_a_person"),
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="shift_ends_after_start"),
        ]
        indexes = [models.Index(fields=["post", "starts_at"]), models.Index(fields=["helper", "starts_at"]),
                   models.Index(fields=["path", "starts_at"]), models.Index(fields=["starts_at"])]

    def __str__(self) -> str:
        return f"{self.post_id} {self.starts_at:%m-%d %H:%M}"

    @property
    def person_name(self) -> str:
        return self.helper.name if self.helper_id else self.staff.name

    @property
    def hours_served(self) -> float:
        if self.on_at and self.off_at:
            return round((self.off_at - self.on_at).total_seconds() / 3600, 2)
        return 0.0


class SwapState(models.TextChoices):
    REQUESTED = "requested", _("待对方接受")
    ACCEPTED = "accepted", _("待审批")
    APPROVED = "approved", _("已换班")
    DECLINED = "declined", _("未换班")


class ShiftSwap(models.Model):
    """换班: the holder asks another helper to take the shift; they accept; the post's unit approves."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="swaps")
    path = models.CharField(max_length=PATH)
    from_helper = models.ForeignKey(Helper, on_delete=models.CASCADE, related_name="+")
    to_helper = models.ForeignKey(Helper, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=SwapState.choices, default=SwapState.REQUESTED)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    def __str__(self) -> str:
        return f"{self.shift_id}: {self.from_helper_id} → {self.to_helper_id}"


class TaskKind(models.TextChoices):
    PUBLICITY = "publicity", _("宣传")
    DISINFECTION = "disinfection", _("消杀")
    DELIVERY = "delivery", _("物资配送")
    SCREENING = "screening", _("协助排查")
    VISIT = "visit", _("走访老人")
    OTHER = "other", _("其他")


class Task(models.Model):
    """任务 for a helper or a team; its deadline, reminders and close-out live in its loop (kind ``TASK``).
    ``households`` / ``places`` name what it targets."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    kind = models.CharField(max_length=14, choices=TaskKind.choices)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    helper = models.ForeignKey(Helper, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    households = models.JSONField(default=list, blank=True)  # household ids
    places = models.JSONField(default=list, blank=True)  # disinfection place ids
    due_at = models.DateTimeField()
    report = models.TextField(blank=True)
    photo = models.FileField(upload_to="forces/tasks/%Y/%m/", blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def assignee(self) -> str:
        """Who does it: the helper's name or the team's."""
        if self.helper_id:
            return self.helper.name
        return self.team.name if self.team_id else ""


class PlaceKind(models.TextChoices):
    ROAD = "road", _("道路")
    PARK = "park", _("公园广场")
    GARBAGE = "garbage", _("垃圾收集点")
    BIKE_SHED = "bike_shed", _("车棚")
    LIFT = "lift", _("电梯")
    STAIRWELL = "stairwell", _("楼道")
    TOILET = "toilet", _("公厕")
    MARKET = "market", _("农贸市场")


class Place(models.Model):
    """消杀点位: a public place of a compound or village, to be disinfected every ``every_hours`` hours."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=PlaceKind.choices)
    every_hours = models.PositiveSmallIntegerField(default=24)
    last_done_at = models.DateTimeField(null=True, blank=True)  # the latest log's time (kept by the log action)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["path", "name"]
        indexes = [models.Index(fields=["path", "active"])]

    def __str__(self) -> str:
        return self.name

    def is_overdue(self, now) -> bool:
        return self.last_done_at is None or self.last_done_at + dt.timedelta(hours=self.every_hours) < now


class DisinfectionLog(models.Model):
    """One disinfection job (消杀记录): who, when, where, agent and concentration, area, photo."""

    place = models.ForeignKey(Place, on_delete=models.PROTECT, related_name="logs")
    path = models.CharField(max_length=PATH)
    helper = models.ForeignKey(Helper, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    done_by = models.CharField(max_length=50)  # the name written in the ledger
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    at = models.DateTimeField()
    agent = models.CharField(max_length=60)  # 消毒剂, e.g. 含氯消毒液
    concentration = models.CharField(max_length=30)  # e.g. 500mg/L
    area_m2 = models.PositiveIntegerField(default=0)
    photo = models.FileField(upload_to="forces/disinfection/%Y/%m/", blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["path", "at"]), models.Index(fields=["place", "at"])]

    def __str__(self) -> str:
        return f"{self.place_id} {self.at:%Y-%m-%d %H:%M}"


class Notice(models.Model):
    """通知公告 published to a unit's subtree: a resident page with no login and no script, and per-building QR
    sheets. ``views`` counts readings per building (never who read)."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=PATH, db_index=True)
    title = models.CharField(max_length=120)
    body = models.TextField()
    published_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.title


class NoticeView(models.Model):
    """Readings of a notice from one building's QR code: a counter, nothing about the reader."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="views")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")  # the compound / group / grid
    building = models.CharField(max_length=20, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notice", "unit", "building"], name="one_counter_per_building")]

    def __str__(self) -> str:
        return f"{self.notice_id} {self.unit_id} {self.building}: {self.count}"


class GroupCode(models.Model):
    """The QR image of a compound's or grid's WeCom / WeChat group (uploaded), printed on the building sheets."""

    unit = models.OneToOneField(Unit, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=PATH)
    image = models.FileField(upload_to="forces/groups/")
    uploaded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.image.name}"
