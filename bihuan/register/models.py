"""The register: units of levels 1–6 in one tree, households and residents (level 7), staff.

Paths are fixed-width: every level adds ``SEGMENT`` digits, so a subtree is the range
``path >= p AND path < next_path(p)`` (an index range scan on SQLite and PostgreSQL alike).
Households and residents carry the path of the unit they belong to, so scoping and rollups never join
up the tree.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from bihuan.core import crypto
from bihuan.core.personal import mask_id_number, mask_phone
from bihuan.core.roles import RESPONSIBLE_ROLES, Role

SEGMENT = 4
MAX_LEVEL = 6


def next_path(path: str) -> str:
    """The smallest path that is not inside ``path``'s subtree (exclusive upper bound)."""
    head, last = path[:-SEGMENT], int(path[-SEGMENT:])
    return head + str(last + 1).zfill(SEGMENT)


def child_path(parent_path: str, number: int) -> str:
    """The path of the ``number``-th child (1, 2, …) of the unit at ``parent_path`` ("" for the top level): the
    one rule for child paths (actions, the workbook import and the demo generator all use it)."""
    if not 1 <= number < 10**SEGMENT:
        raise ValueError(f"child number {number} does not fit in {SEGMENT} digits")
    return parent_path + str(number).zfill(SEGMENT)


def subtree_q(path: str, field: str = "path") -> models.Q:
    return models.Q(**{f"{field}__gte": path, f"{field}__lt": next_path(path)})


class LevelName(models.Model):
    """Names of the seven levels as data (defaults from the source: 区委区政府 … 村民居民)."""

    level = models.PositiveSmallIntegerField(primary_key=True)
    name_zh = models.CharField(max_length=60)
    name_en = models.CharField(max_length=80)

    def __str__(self) -> str:
        return self.name_zh


class UnitKind(models.TextChoices):
    DISTRICT = "district", _("区")
    COMMAND_OFFICE = "command_office", _("疫情防控指挥部办公室")
    DEPARTMENT = "department", _("区直部门")
    SUBDISTRICT = "subdistrict", _("街道")
    TOWN = "town", _("镇")
    TOWNSHIP = "township", _("乡")
    DEV_ZONE = "dev_zone", _("开发区")
    COMMUNITY = "community", _("社区")
    VILLAGE = "village", _("村")
    COMPOUND = "compound", _("小区")
    VILLAGER_GROUP = "villager_group", _("村民小组")
    BUNGALOW_AREA = "bungalow_area", _("平房区")
    GRID = "grid", _("网格")


KINDS_BY_LEVEL = {
    1: {UnitKind.DISTRICT},
    2: {UnitKind.COMMAND_OFFICE, UnitKind.DEPARTMENT},
    3: {UnitKind.SUBDISTRICT, UnitKind.TOWN, UnitKind.TOWNSHIP, UnitKind.DEV_ZONE},
    4: {UnitKind.COMMUNITY, UnitKind.VILLAGE},
    5: {UnitKind.COMPOUND, UnitKind.VILLAGER_GROUP, UnitKind.BUNGALOW_AREA},
    6: {UnitKind.GRID},
}


class Unit(models.Model):
    level = models.PositiveSmallIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=UnitKind.choices)
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, unique=True)
    # Other names the unit goes by (for matching addresses in pushed lists), separated by "|".
    aliases = models.CharField(max_length=300, blank=True)
    # 三无小区: a compound with no property management is a blind spot until a cadre answers for it (UnitLeader).
    no_property_management = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_grid(self) -> bool:
        return self.level == MAX_LEVEL

    def subtree(self) -> models.Q:
        return subtree_q(self.path)

    def ancestor_paths(self) -> list[str]:
        return [self.path[: SEGMENT * i] for i in range(1, len(self.path) // SEGMENT + 1)]

    def child_path(self, number: int) -> str:
        """The path of this unit's ``number``-th child (see the module function ``child_path``)."""
        return child_path(self.path, number)

    @staticmethod
    def next_child_path(parent: Unit | None) -> str:
        """The path for a new child of ``parent`` (a new top-level unit if None): one after the last child."""
        prefix = parent.path if parent else ""
        last = (Unit.objects.filter(subtree_q(prefix) if prefix else models.Q(),
                                    level=(parent.level + 1 if parent else 1))
                .order_by("-path").values_list("path", flat=True).first())
        return child_path(prefix, int(last[-SEGMENT:]) + 1 if last else 1)

    def ancestors(self) -> list[Unit]:
        """From the root down to this unit, in one query."""
        return list(Unit.objects.filter(path__in=self.ancestor_paths()).order_by("path"))


class HouseholdKind(models.TextChoices):
    URBAN = "urban", _("城镇")
    RURAL = "rural", _("农村")


class Household(models.Model):
    """A household (户), level 7. ``unit`` is its grid; a household whose unit is not a grid is a blind spot."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="households")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL, db_index=True)
    code = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=10, choices=HouseholdKind.choices)
    # Urban: building / entrance (单元) / room inside the compound; rural: house number in the villager group.
    building = models.CharField(max_length=20, blank=True)
    entrance = models.CharField(max_length=20, blank=True)
    room = models.CharField(max_length=20, blank=True)
    house_number = models.CharField(max_length=20, blank=True)
    address = models.CharField(max_length=200)
    head_name = models.CharField(max_length=50, blank=True)
    head_initials = models.CharField(max_length=20, blank=True)
    member_count = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path", "building", "entrance", "room", "house_number", "id"]
        indexes = [models.Index(fields=["path", "id"])]

    def __str__(self) -> str:
        return self.address

    @property
    def has_grid(self) -> bool:
        return self.unit.level == MAX_LEVEL


class ResidentStatus(models.TextChoices):
    PRESENT = "present", _("在住")
    AWAY = "away", _("外出")
    MOVED_OUT = "moved_out", _("已迁出")
    DECEASED = "deceased", _("已故")


ACTIVE_STATUSES = (ResidentStatus.PRESENT, ResidentStatus.AWAY)


class Relation(models.TextChoices):
    HEAD = "head", _("户主")
    SPOUSE = "spouse", _("配偶")
    CHILD = "child", _("子女")
    PARENT = "parent", _("父母")
    GRANDCHILD = "grandchild", _("孙子女")
    SIBLING = "sibling", _("兄弟姐妹")
    OTHER = "other", _("其他")


class Sex(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")


# Key groups (重点人群): boolean columns, so a rollup is one SUM each.
KEY_GROUPS = {
    "elderly_alone": _("独居老人"),
    "disabled": _("残疾人"),
    "pregnant": _("孕产妇"),
    "chronic_illness": _("慢性病患者"),
    "infant": _("婴幼儿"),
}


class LookupHashField(models.CharField):
    """A keyed hash (hex) that is only ever looked up by equality. On PostgreSQL Django gives an indexed
    ``varchar`` column a second index (``varchar_pattern_ops``, for ``LIKE 'abc%'``) that an exact-match hash never
    uses and every insert and update pays for; the same column type spelt ``character varying`` gets the one
    index alone. Elsewhere a plain CharField."""

    def db_type(self, connection):
        db_type = super().db_type(connection)
        if connection.vendor == "postgresql" and db_type and db_type.startswith("varchar"):
            return "character varying" + db_type[len("varchar"):]
        return db_type


class PersonalContactMixin(models.Model):
    """Sealed phone with its lookup hash, masked form and last four digits (for search)."""

    # sealed column -> (lookup-hash kind, hash column); read by `bihuan rotate_data_key`.
    SEALED_FIELDS = {"phone_sealed": ("phone", "phone_hash")}

    phone_sealed = models.BinaryField(blank=True, default=b"")
    phone_hash = models.CharField(max_length=40, blank=True, db_index=True)
    phone_masked = models.CharField(max_length=16, blank=True)
    phone_tail = models.CharField(max_length=4, blank=True)

    class Meta:
        abstract = True

    def set_phone(self, phone: str) -> None:
        self.phone_sealed = crypto.seal(phone)
        self.phone_hash = crypto.lookup_hash("phone", phone)
        self.phone_masked = mask_phone(phone)
        self.phone_tail = phone[-4:] if phone else ""

    def reveal_phone(self) -> str:
        return crypto.unseal(self.phone_sealed)


class PersonalIdMixin(models.Model):
    """Sealed ID number with its lookup hash, masked form and last four characters (for search)."""

    SEALED_FIELDS = {"id_sealed": ("id", "id_hash")}

    id_sealed = models.BinaryField(blank=True, default=b"")
    id_hash = models.CharField(max_length=40, blank=True, db_index=True)
    id_masked = models.CharField(max_length=20, blank=True)
    id_tail = models.CharField(max_length=4, blank=True)

    class Meta:
        abstract = True

    def set_id_number(self, id_number: str) -> None:
        self.id_sealed = crypto.seal(id_number)
        self.id_hash = crypto.lookup_hash("id", id_number)
        self.id_masked = mask_id_number(id_number)
        self.id_tail = id_number[-4:] if id_number else ""

    def reveal_id_number(self) -> str:
        return crypto.unseal(self.id_sealed)


class Resident(PersonalIdMixin, PersonalContactMixin):
    SEALED_FIELDS = PersonalContactMixin.SEALED_FIELDS | PersonalIdMixin.SEALED_FIELDS

    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="residents")
    # Copies of the household's unit and path: rollups group residents without a join.
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=SEGMENT * MAX_LEVEL)
    name = models.CharField(max_length=50)
    name_initials = models.CharField(max_length=20, db_index=True)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    birth_date = models.DateField()
    relation = models.CharField(max_length=12, choices=Relation.choices, default=Relation.HEAD)
    status = models.CharField(max_length=12, choices=ResidentStatus.choices, default=ResidentStatus.PRESENT)
    elderly_alone = models.BooleanField(default=False)
    disabled = models.BooleanField(default=False)
    pregnant = models.BooleanField(default=False)
    chronic_illness = models.BooleanField(default=False)
    infant = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["household_id", "id"]
        indexes = [
            models.Index(fields=["path", "id"]),
            # Covers the register rollup: the GROUP BY reads only this index, never the wide rows.
            models.Index(
                fields=["unit", "status", "elderly_alone", "disabled", "pregnant", "chronic_illness", "infant"],
                name="resident_rollup",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def age(self, on: dt.date | None = None) -> int:
        on = on or dt.date.today()
        b = self.birth_date
        return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


class Language(models.TextChoices):
    BROWSER = "", _("跟随浏览器")
    ZH_HANS = "zh-hans", _("简体中文")
    EN = "en", _("English")


class Staff(PersonalContactMixin):
    """A staff account's place in the tree: the unit whose subtree it sees, and its role.

    Staff are managed by the admins of the units above them (``staff_actions``). A deactivated account keeps its
    row (audit rows and loop history point at it) with ``deactivated_at`` set and its user inactive; it counts for
    nothing in coverage. A grid role answers for its whole grid unless ``households`` names some of them.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=24, choices=Role.choices)
    name = models.CharField(max_length=50)
    language = models.CharField(max_length=8, choices=Language.choices, blank=True, default="", db_default="")
    # A first password (generated, shown once) must be replaced at the first login.
    must_change_password = models.BooleanField(default=False, db_default=False)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # The households a grid role answers for (several people may share a grid); empty = the whole grid.
    households = models.ManyToManyField(Household, blank=True, related_name="responsible_staff")

    class Meta:
        indexes = [models.Index(fields=["unit", "role"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"

    @property
    def is_responsible(self) -> bool:
        return self.role in RESPONSIBLE_ROLES

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None


class UnitLeader(models.Model):
    """包保: a cadre (a staff account, of any unit) answering for a unit. Shown on the unit's page; a compound
    with no property management (三无小区) stays a blind spot until it has one."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="leaders")
    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="leads")
    duty = models.CharField(max_length=60, blank=True)  # e.g. 包保领导, 包联干部
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["unit", "staff"], name="one_leader_post_per_unit_and_staff")]

    def __str__(self) -> str:
        return f"{self.staff.name} → {self.unit.name}"
