"""A deterministic, realistic district for demos, tests and benchmarks (``bihuan generate``).

``generate_district(preset, seed)`` builds the seven levels of a Yaodu-like district: the district, the
command office and departments, subdistricts / towns / townships, communities and villages, compounds,
bungalow areas and villager groups, grids of 30–150 households, and households with their residents.
Every unit of levels 1–5 gets a staff account and every grid a responsible person.

Everything that is *chosen* (names, units, ages, ID numbers, phones) follows from ``random.Random(seed)``;
only the encryption nonces differ between runs. Rows are written with raw SQL in batches
(``executemany`` on SQLite, ``COPY`` on PostgreSQL) with primary keys assigned here, so that the full
``yaodu`` preset (~944,000 residents) builds in about a minute on SQLite. Clear ID numbers and phones
exist only in memory: they are sealed and hashed before they reach a row, and never logged.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from bihuan.core import audit, crypto
from bihuan.core.models import AuditEntry
from bihuan.core.personal import mask_id_number, mask_phone
from bihuan.core.pinyin import initials
from bihuan.core.roles import Role
from bihuan.demo import PASSWORD
from bihuan.demo import checkpoints as checkpoint_demo
from bihuan.demo.day import build_day
from bihuan.demo.forces import generate_forces
from bihuan.demo.inspections import generate_inspections
from bihuan.demo.people import REGION, People, _sealed_phone
from bihuan.demo.rows import BATCH, Writer, _max_id, _qn
from bihuan.register.models import (
    Household,
    HouseholdKind,
    LevelName,
    Relation,
    Resident,
    ResidentStatus,
    Staff,
    Unit,
    UnitKind,
    child_path,
)

# Unit code: the region code, then fixed-width digits per level below the district (levels 2..6).
CODE_WIDTH = {2: 2, 3: 3, 4: 3, 5: 3, 6: 3}

LEVEL_NAMES = {
    1: ("区委区政府", "District Party Committee and Government"),
    2: ("区疫情防控领导小组办公室、区直部门", "District epidemic-prevention office and district departments"),
    3: ("乡镇（街道）", "Townships, towns and subdistricts"),
    4: ("村（社区）", "Villages and communities"),
    5: ("小区物业、村民小组", "Residential compounds and villager groups"),
    6: ("村民代表、网格员、片长、楼长", "Villager representatives, grid workers, block and building leaders"),
    7: ("村民居民", "Villagers and residents"),
}


class RegisterNotEmpty(RuntimeError):
    """The register already holds units, households, residents or staff."""


# ---------------------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Level3:
    kind: str
    units: int
    communities: int  # level-4 communities spread over these units
    villages: int  # level-4 villages spread over these units


@dataclass(frozen=True)
class Preset:
    name: str
    departments: int
    level3: tuple[Level3, ...]
    urban_households: int  # spread over the communities (target; vacant flats make it approximate)
    rural_households: int  # spread over the villages
    compound_size: tuple[int, int]  # households a compound is planned for
    bungalow_chance: float  # share of communities that also have bungalow areas (平房区)
    group_size: tuple[int, int]  # households per villager group
    urban_grid: tuple[int, int]  # target households per grid
    rural_grid: tuple[int, int]
    building_leader_chance: float = 0.3  # urban grids that also have a building leader (楼长)


PRESETS: dict[str, Preset] = {
    # Every level present, at least two units at each of the levels 3–6: a few hundred residents.
    "tiny": Preset(
        name="tiny", departments=3,
        level3=(Level3(UnitKind.SUBDISTRICT, 1, 1, 0), Level3(UnitKind.TOWN, 1, 0, 1)),
        urban_households=80, rural_households=70, compound_size=(80, 80), bungalow_chance=0.0,
        group_size=(30, 40), urban_grid=(35, 45), rural_grid=(30, 40),
    ),
    # About 20,000 residents: a demo that loads in seconds.
    "demo": Preset(
        name="demo", departments=5,
        level3=(
            Level3(UnitKind.SUBDISTRICT, 2, 4, 2),
            Level3(UnitKind.TOWN, 1, 1, 6),
            Level3(UnitKind.TOWNSHIP, 1, 0, 4),
        ),
        urban_households=3_900, rural_households=2_900, compound_size=(60, 400), bungalow_chance=0.5,
        group_size=(40, 120), urban_grid=(60, 130), rural_grid=(40, 90),
    ),
    # The real district: 9 subdistricts, 10 towns, 6 townships, 1 development zone; 57 communities,
    # 372 villages; ~944,000 residents in ~330,000 households.
    "yaodu": Preset(
        name="yaodu", departments=8,
        level3=(
            Level3(UnitKind.SUBDISTRICT, 9, 50, 27),
            Level3(UnitKind.TOWN, 10, 5, 255),
            Level3(UnitKind.TOWNSHIP, 6, 0, 87),
            Level3(UnitKind.DEV_ZONE, 1, 2, 3),
        ),
        urban_households=167_500, rural_households=153_000, compound_size=(60, 420), bungalow_chance=0.35,
        group_size=(40, 120), urban_grid=(60, 130), rural_grid=(40, 90),
    ),
}

# ------------------------------------------------------------------------------------------------ names

LEVEL3_NAMES = {
    UnitKind.SUBDISTRICT: ["解放路街道", "鼓楼南街道", "鼓楼北街道", "水塔街道", "南街街道", "车站街道",
                           "铁路东街道", "汾河街道", "辛寺街街道"],
    UnitKind.TOWN: ["屯里镇", "乔李镇", "大阳镇", "县底镇", "刘村镇", "金殿镇", "吴村镇", "土门镇", "魏村镇",
                    "尧庙镇"],
    UnitKind.TOWNSHIP: ["枕头乡", "贾得乡", "段店乡", "一平垣乡", "河底乡", "郭行乡"],
    UnitKind.DEV_ZONE: ["尧都经济开发区办事处"],
}
DEPARTMENTS = ["区卫健局", "区公安分局", "区教育局", "区市场监管局", "区交通运输局", "区民政局", "区住建局",
               "区文旅局", "区商务局", "区城管局"]
COMMUNITY_WORDS = (
    "鼓楼 东关 西关 南关 北关 解放 五一 向阳 平阳 华门 贡院 河汾 滨河 新华 建设 育英 晋槐 古城 工农 铁北 "
    "迎春 东城 西城 南城 北城 幸福 和平 友谊 光明 红旗 长虹 汾河 兴华 康乐 秦蜀 广场 学苑 文化 锦绣 洪家楼 "
    "尧贤 尧临 华州 景苑 水塔 东方红 车站 二中 西街 东街 南街 北街 鼓南 鼓北 体育 乡贤 涝河 华康 金尧 "
    "尧庙 帝尧 新民 站前 府城 东岳 双塔 苗圃 振兴 泰和 桥东 桥西 中和 永乐 庆丰"
).split()
COMPOUND_HEADS = (
    "锦悦 金色 华府 河汾 平阳 阳光 康馨 龙祥 世纪 汾河 鼓楼 尧都 晋都 华门 滨河 东方 翠苑 紫金 御景 书香 "
    "丽景 怡和 盛世 兴华 福源 金地 丰源 绿洲 安居 温泉 鑫源 嘉禾 明珠 铂悦 尚品 泰和 锦绣 华苑 新城 香溪 "
    "凤凰 玉兰 万和 瑞景 天悦 康城 星河 润园 祥和 恒泰 和平 阳光城 尧天 汾阳 古槐 锦程 博雅 金桂 银座 "
    "天泽 建业 华远 东辰 城南 城北 馨苑 静园 润泽 府前 帝尧 尚城 晋阳 青年 电力 供电 人民"
).split()
COMPOUND_TAILS = "小区 花园 家园 苑 公寓 新村 名都 嘉园 华庭 雅居 府 佳苑".split()
OLD_COMPOUNDS = ["电业局家属院", "纺织厂宿舍", "粮食局家属院", "焦化厂生活区", "铁路家属院", "邮电小区",
                 "供销社家属院", "钢铁厂生活区", "交通局家属院", "医药公司宿舍", "棉麻公司家属院", "水利局家属院"]
BUNGALOW_HEADS = ("东关 西关 南关 北关 城隍庙 鼓楼西 鼓楼东 铁佛寺 柴市 贡院 仓巷 马家 土地庙 小西关 大中楼 五一 红卫 "
                  "老城 东城根 西城根 北城根 南城根 坡儿上 药王庙 水井").split()
BUNGALOW_TAILS = "巷 街 后街 坊".split()
VILLAGE_HEADS = (
    "东 西 南 北 上 下 前 后 大 小 新 高 王 李 张 刘 陈 杨 赵 郭 段 贾 席 柴 吴 魏 乔 屯 尧 金 石 伍 韩 "
    "范 孙 崔 史 宋 马 卫 薛 辛 姚 景 吉 梁 洪 涧 涝"
).split()
VILLAGE_TAILS = "羊 庄 堡 营 屯 坡 河 沟 坊 郭 店 曲 寨 家庄 头 院 社 城 峪 张 杜 官 亢 桥 寺".split()
NUMERALS = "一 二 三 四 五 六 七 八 九 十".split()


HEAD, SPOUSE, CHILD, PARENT, GRANDCHILD, OTHER = (str(r) for r in (
    Relation.HEAD, Relation.SPOUSE, Relation.CHILD, Relation.PARENT, Relation.GRANDCHILD, Relation.OTHER))
PRESENT, AWAY, MOVED_OUT = str(ResidentStatus.PRESENT), str(ResidentStatus.AWAY), str(ResidentStatus.MOVED_OUT)
URBAN, RURAL = str(HouseholdKind.URBAN), str(HouseholdKind.RURAL)

# Household size distribution (China, ~2.86 persons per household).
SIZES = (1, 2, 3, 4, 5, 6)
_SIZE_CUM = [0.15, 0.45, 0.70, 0.87, 0.96, 1.0]


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals (一, 十, 十一, 二十三)."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else NUMERALS[tens - 1] + "十")
    return head + (NUMERALS[ones - 1] if ones else "")


def _allocate(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder), each ≥ minimum."""
    n = len(weights)
    if n == 0:
        return []
    base = min(minimum, total // n)
    rest = total - base * n
    s = sum(weights)
    raw = [rest * w / s for w in weights]
    parts = [int(x) for x in raw]
    left = rest - sum(parts)
    for i in sorted(range(n), key=lambda i: raw[i] - parts[i], reverse=True)[:left]:
        parts[i] += 1
    return [p + base for p in parts]


def _split(total: int, size: tuple[int, int], rng: random.Random) -> list[int]:
    """Split ``total`` into parts of ``size[0]``..``size[1]`` (one smaller part only if total is small)."""
    lo, hi = size
    parts: list[int] = []
    left = total
    while left > 0:
        if left <= hi:
            s = left
        else:
            s = rng.randint(lo, hi)
            if left - s < lo:
                s = left - lo
        parts.append(s)
        left -= s
    return parts


def _partition(blocks: Sequence[int], target: tuple[int, int], rng: random.Random,
               lo: int = 30, hi: int = 150) -> list[list[int]]:
    """Cut consecutive blocks (buildings, or single households) into grids of ``lo``..``hi`` households.

    Returns lists of block indexes. Grids aim at a size drawn from ``target``; cuts fall on block borders
    (a building is never split). Single households are shared out evenly; buildings by a small dynamic
    programme that keeps every grid within bounds and as close to the aim as it can.
    """
    total = sum(blocks)
    aim = rng.randint(*target)
    n = len(blocks)
    if n == 1:
        return [list(range(n))]
    if all(b == 1 for b in blocks):
        k = max(-(-total // hi), min(max(1, round(total / aim)), max(1, total // lo)))
        sizes = _allocate(total, [1.0] * k)
        out, start = [], 0
        for size in sizes:
            out.append(list(range(start, start + size)))
            start += size
        return out
    prefix = [0]
    for b in blocks:
        prefix.append(prefix[-1] + b)
    inf = float("inf")
    best = [inf] * (n + 1)
    cut = [0] * (n + 1)
    best[0] = 0.0
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            size = prefix[j] - prefix[i]
            if size > hi:
                break
            if size >= lo and best[i] < inf:
                cost = best[i] + (size - aim) ** 2
                if cost < best[j]:
                    best[j], cut[j] = cost, i
    if best[n] == inf:  # no partition within bounds (tiny compounds): one grid
        return [list(range(n))]
    out = []
    j = n
    while j > 0:
        i = cut[j]
        out.append(list(range(i, j)))
        j = i
    return out[::-1]


class Names:
    """Names drawn without repetition from a shuffled pool; when it runs out, second phases (二期, 三期…)."""

    def __init__(self, combos: list[str], rng: random.Random, suffix: str = ""):
        self.pool = list(dict.fromkeys(combos))
        rng.shuffle(self.pool)
        self.suffix = suffix
        self.i = 0

    def take(self) -> str:
        phase, j = divmod(self.i, len(self.pool))
        self.i += 1
        return self.pool[j] + (f"{chinese_number(phase + 1)}期" if phase else "") + self.suffix


# ------------------------------------------------------------------------------------------ the tree


@dataclass
class UnitRow:
    id: int
    parent_id: int | None
    level: int
    code: str
    name: str
    kind: str
    path: str
    children: int = 0  # children created so far (for the next path / code)
    # level 6 only: what the grid's households are (see _grid_addresses)
    rural: bool = False
    label: str = ""  # address prefix down to the level-5 unit, e.g. 解放路街道鼓楼社区锦悦小区
    homes: list = field(default_factory=list)


class Tree:
    def __init__(self, first_id: int):
        self.units: list[UnitRow] = []
        self.next_id = first_id

    def add(self, parent: UnitRow | None, name: str, kind: str) -> UnitRow:
        if parent is None:
            level, code, path = 1, REGION, child_path("", 1)
        else:
            parent.children += 1
            level = parent.level + 1
            code = parent.code + str(parent.children).zfill(CODE_WIDTH[level])
            path = child_path(parent.path, parent.children)
        unit = UnitRow(self.next_id, parent.id if parent else None, level, code, name, kind, path)
        self.next_id += 1
        self.units.append(unit)
        return unit




# ------------------------------------------------------------------------------------------ reset


def register_is_empty() -> bool:
    return not (Unit.objects.exists() or Household.objects.exists() or Resident.objects.exists()
                or Staff.objects.exists())


def _relations_to(model: type[models.Model]) -> list[tuple[type[models.Model], models.Field]]:
    """Every (model, field) in the project whose foreign key or one-to-one points at ``model``."""
    return [
        (m, f)
        for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy
        for f in m._meta.concrete_fields
        if f.is_relation and f.related_model is model
    ]


def _sets_null(f: models.Field) -> bool:
    return f.null and f.remote_field.on_delete is models.SET_NULL


def _tables_to_empty(roots: set[type[models.Model]]) -> set[type[models.Model]]:
    """``roots`` and every model whose rows cannot outlive theirs (non-nullable links, transitively)."""
    found = set(roots)
    todo = list(roots)
    while todo:
        for m, f in _relations_to(todo.pop()):
            if m not in found and not _sets_null(f):
                found.add(m)
                todo.append(m)
    return found


def _delete_rows(qs: models.QuerySet, emptied: set, deleted: dict[str, int]) -> None:
    """Delete ``qs`` and, first, whatever points at those rows (set-based: one statement per table)."""
    model = qs.model
    for m, f in _relations_to(model):
        if m in emptied or m is model:
            continue  # emptied as a whole anyway
        dependents = m._base_manager.filter(**{f"{f.name}__in": qs.values("pk")})
        if _sets_null(f):
            dependents.update(**{f.name: None})
        else:
            _delete_rows(dependents, emptied, deleted)
    table = model._meta.db_table
    deleted[table] = deleted.get(table, 0) + qs._raw_delete(qs.db)


def reset_register(out: Callable[[str], None] = print) -> dict[str, int]:
    """Delete the register (units, households, residents, staff and their user accounts), the audit rows,
    inspection groups, self-reports and the outbox, and whatever rows of other apps point at them, with one statement per table (no row-by-row
    cascade in Python)."""
    from bihuan.checkpoints.models import SelfReport
    from bihuan.inspections.models import InspectionGroup
    from bihuan.notify.models import Message

    User = get_user_model()
    # The district's own rows that hang on the register only through nullable links or many-to-many (a group's
    # territory, a self-report's pushed person, the outbox) go with it; configuration (checklists, protocols,
    # control types, level names) stays.
    emptied = _tables_to_empty({Unit, Household, Resident, Staff, AuditEntry, InspectionGroup, SelfReport, Message})
    deleted: dict[str, int] = {}
    with transaction.atomic():
        user_ids = list(Staff.objects.values_list("user_id", flat=True))
        for model in emptied:
            # nullable links from tables that stay: set them to null
            for m, f in _relations_to(model):
                if m not in emptied:
                    m._base_manager.filter(**{f"{f.name}__isnull": False}).update(**{f.name: None})
        _delete_rows(User._base_manager.filter(id__in=user_ids), emptied, deleted)
        for model in sorted(emptied, key=lambda m: m._meta.db_table):
            qs = model._base_manager.all()
            deleted[model._meta.db_table] = deleted.get(model._meta.db_table, 0) + qs._raw_delete(qs.db)
    out("reset: deleted " + ", ".join(f"{t} {n:,}" for t, n in sorted(deleted.items()) if n))
    return deleted


# ------------------------------------------------------------------------------------------ generate


def generate_district(preset: str, seed: int = 1, out: Callable[[str], None] = print, day: bool = False) -> dict:
    """Build the district of ``preset`` (tiny, demo, yaodu) from ``seed`` in one transaction; with ``day``, also
    a day in progress as of now (``bihuan.demo.day``).

    Returns counts (units per level, households, residents, staff) and the demo logins.
    Raises RegisterNotEmpty if the register holds anything (reset it first).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    started = time.perf_counter()
    with transaction.atomic():
        if not register_is_empty():
            raise RegisterNotEmpty("the register is not empty; reset it first (bihuan generate --reset)")
        sqlite = connection.vendor == "sqlite"
        if sqlite:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size")
                old_cache = cursor.fetchone()[0]
                cursor.execute("PRAGMA cache_size = -262144")  # 256 MiB while the indexes grow
        try:
            result = _Generator(PRESETS[preset], seed, out).run()
            result["checkpoints"] = checkpoint_demo.generate(seed, out)
            result["day"] = build_day(seed, out) if day else {}
        finally:
            if sqlite:
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA cache_size = {int(old_cache)}")
    result["seconds"] = round(time.perf_counter() - started, 2)
    out(f"generated {preset} (seed {seed}) in {result['seconds']} s")
    return result


class _Generator:
    def __init__(self, preset: Preset, seed: int, out: Callable[[str], None]):
        self.p = preset
        self.seed = seed
        self.out = out
        self.rng = random.Random(seed)
        self.today = timezone.localdate()
        self.people = People(self.rng, self.today)
        self.now = connection.ops.adapt_datetimefield_value(timezone.now())
        self.tree = Tree(_max_id(Unit) + 1)
        self.staff_plan: list[tuple[UnitRow, str, str]] = []  # (unit, username, role)
        self.logins: list[dict] = []
        self.more_logins: list[dict] = []
        self.memorable_used: set[str] = set()
        self.counts = {"households": 0, "residents": 0}

    # ---- the tree, levels 1–6 --------------------------------------------------------------------

    def build_tree(self) -> None:
        p, rng, tree = self.p, self.rng, self.tree
        district = tree.add(None, "尧都区", UnitKind.DISTRICT)
        self.staff(district, "commander", Role.DISTRICT_COMMANDER, login=True)
        office = tree.add(district, "区疫情防控指挥部办公室", UnitKind.COMMAND_OFFICE)
        self.staff(office, "office", Role.COMMAND_OFFICE, login=True)
        for i in range(p.departments):
            name = DEPARTMENTS[i] if i < len(DEPARTMENTS) else f"区直部门{i + 1}"
            dept = tree.add(district, name, UnitKind.DEPARTMENT)
            self.staff(dept, f"dept{i + 1}", Role.DEPARTMENT, extra=i == 0)

        community_names = Names([w + "社区" for w in COMMUNITY_WORDS], rng)
        village_names = Names([h + t + "村" for h in VILLAGE_HEADS for t in VILLAGE_TAILS if h != t], rng)
        compound_names = Names([h + t for h in COMPOUND_HEADS for t in COMPOUND_TAILS] + OLD_COMPOUNDS, rng)
        bungalow_names = Names([h + t for h in BUNGALOW_HEADS for t in BUNGALOW_TAILS], rng, suffix="平房区")

        communities: list[tuple[UnitRow, UnitRow]] = []
        villages: list[tuple[UnitRow, UnitRow]] = []
        for spec in p.level3:
            names = LEVEL3_NAMES[spec.kind]
            l3s = [tree.add(office, names[i] if i < len(names) else f"{names[0][:-2]}{i + 1}", spec.kind)
                   for i in range(spec.units)]
            weights = [rng.uniform(0.6, 1.4) for _ in l3s]
            for l3, nc, nv in zip(l3s, _allocate(spec.communities, weights), _allocate(spec.villages, weights),
                                  strict=True):
                for _ in range(nc):
                    communities.append((l3, tree.add(l3, community_names.take(), UnitKind.COMMUNITY)))
                for _ in range(nv):
                    villages.append((l3, tree.add(l3, village_names.take(), UnitKind.VILLAGE)))
        for l3 in (u for u in tree.units if u.level == 3):
            self.staff(l3, "township1", Role.TOWNSHIP_STAFF, login=True)

        urban = _allocate(p.urban_households, [rng.uniform(0.5, 1.5) for _ in communities], minimum=1)
        for (l3, community), households in zip(communities, urban, strict=True):
            self.staff(community, "community1", Role.COMMUNITY_STAFF, login=True)
            self.build_community(l3, community, households, compound_names, bungalow_names)
        rural = _allocate(p.rural_households, [rng.uniform(0.5, 1.5) for _ in villages], minimum=1)
        for (l3, village), households in zip(villages, rural, strict=True):
            self.staff(village, "village1", Role.COMMUNITY_STAFF, extra=True)
            self.build_village(l3, village, households)

    def build_community(self, l3: UnitRow, community: UnitRow, households: int, compound_names: Names,
                        bungalow_names: Names) -> None:
        p, rng = self.p, self.rng
        bungalow = 0
        if rng.random() < p.bungalow_chance:
            bungalow = int(households * rng.uniform(0.08, 0.25))
        for size in _split(households - bungalow, p.compound_size, rng):
            compound = self.tree.add(community, compound_names.take(), UnitKind.COMPOUND)
            self.staff(compound, "compound1", Role.PROPERTY_MANAGER, login=True)
            self.build_compound(f"{l3.name}{community.name}{compound.name}", compound, size)
        if bungalow:
            for size in _split(bungalow, (40, 200), rng):
                area = self.tree.add(community, bungalow_names.take(), UnitKind.BUNGALOW_AREA)
                self.staff(area, "", Role.PROPERTY_MANAGER)
                self.add_grids(area, f"{l3.name}{community.name}{area.name}", [1] * size,
                               [(str(n),) for n in range(1, size + 1)], p.urban_grid, rural=False)

    def build_compound(self, label: str, compound: UnitRow, planned: int) -> None:
        """Buildings (号楼) with entrances (单元), floors and flats; about 9 in 10 flats occupied."""
        rng = self.rng
        high_rise = rng.random() < 0.4
        buildings: list[list[tuple[str, str, str]]] = []
        total = 0
        number = 0
        while total < planned:
            number += 1
            if high_rise:
                floors, entrances, per_floor = rng.randint(11, 18), rng.randint(1, 2), 2
            else:
                floors, entrances, per_floor = rng.randint(5, 7), rng.randint(2, 3), 2
            flats = []
            for e in range(1, entrances + 1):
                for f in range(1, floors + 1):
                    for r in range(1, per_floor + 1):
                        if rng.random() < 0.9:
                            flats.append((str(number), str(e), f"{f}{r:02d}"))
            if len(flats) > planned - total and total + len(flats) > planned * 1.2 and total:
                flats = flats[: max(planned - total, 10)]
            buildings.append(flats)
            total += len(flats)
        homes = [home for b in buildings for home in b]
        blocks = [len(b) for b in buildings]
        # grids cover whole buildings
        starts = [0]
        for b in blocks:
            starts.append(starts[-1] + b)
        self.add_grids(compound, label, blocks, homes, self.p.urban_grid, rural=False, starts=starts)

    def build_village(self, l3: UnitRow, village: UnitRow, households: int) -> None:
        p, rng = self.p, self.rng
        parts = _split(households, p.group_size, rng)
        for i, size in enumerate(parts, start=1):
            group_label = chinese_number(i) + "组"
            group = self.tree.add(village, village.name + group_label, UnitKind.VILLAGER_GROUP)
            self.staff(group, "group1", Role.PROPERTY_MANAGER, extra=True)
            self.add_grids(group, f"{l3.name}{village.name}{group_label}", [1] * size,
                           [(str(n),) for n in range(1, size + 1)], p.rural_grid, rural=True)

    def add_grids(self, parent: UnitRow, label: str, blocks: list[int], homes: list[tuple], target,
                  *, rural: bool, starts: list[int] | None = None) -> None:
        if starts is None:
            starts = list(range(len(blocks) + 1))
        for n, members in enumerate(_partition(blocks, target, self.rng), start=1):
            grid = self.tree.add(parent, f"{parent.name}第{n}网格", UnitKind.GRID)
            grid.rural = rural
            grid.label = label
            grid.homes = homes[starts[members[0]]: starts[members[-1] + 1]]
            if rural:
                self.staff(grid, "rep1", Role.VILLAGER_REP, extra=True)
            else:
                self.staff(grid, "grid1", Role.GRID_WORKER, login=True)
                if len(members) > 1 and self.rng.random() < self.p.building_leader_chance:
                    self.staff_plan.append((grid, f"s{grid.code}b", Role.BUILDING_LEADER))

    def staff(self, unit: UnitRow, memorable: str, role: str, *, login: bool = False, extra: bool = False) -> None:
        """Plan the staff account of ``unit``: ``memorable`` for the first unit of its kind, else s<code>."""
        if memorable and memorable not in self.memorable_used:
            self.memorable_used.add(memorable)
            username = memorable
            if login or extra:
                entry = {"username": username, "level": unit.level, "unit": unit.name, "role": str(role)}
                (self.logins if login else self.more_logins).append(entry)
        else:
            username = f"s{unit.code}"
        self.staff_plan.append((unit, username, role))

    # ---- households and residents ----------------------------------------------------------------

    def members(self, size: int) -> list[tuple[str, bool, int, str]]:
        """(relation, male, age, surname) for a household of ``size`` people, head first."""
        rng, people = self.rng, self.people
        randint = rng.randint
        r = rng.random()
        head_male = rng.random() < 0.7
        s_head = people.surname()
        if size == 1:
            age = randint(65, 92) if r < 0.33 else randint(20, 64)
            return [(HEAD, rng.random() < 0.5, age, s_head)]
        s_spouse = people.surname()
        father_surname = s_head if head_male else s_spouse

        def spouse_age(a: int) -> int:
            return max(20, min(95, a + (randint(-5, 3) if head_male else randint(-3, 5))))

        if size == 2:
            if r < 0.72:  # a couple, often an empty nest
                age = randint(23, 85)
                return [(HEAD, head_male, age, s_head), (SPOUSE, not head_male, spouse_age(age), s_spouse)]
            age = randint(40, 70)  # a parent and a grown or growing child
            return [(HEAD, head_male, age, s_head),
                    (CHILD, rng.random() < 0.515, max(0, age - randint(22, 34)), father_surname)]
        if size >= 5 and r < 0.5:
            # three generations: the head and spouse, a married child, grandchildren
            age = randint(50, 75)
            out = [(HEAD, head_male, age, s_head), (SPOUSE, not head_male, spouse_age(age), s_spouse)]
            child_male = rng.random() < 0.7
            child_age = max(20, age - randint(22, 30))
            in_law = people.surname()
            out.append((CHILD, child_male, child_age, father_surname))
            out.append((OTHER, not child_male, max(20, child_age + randint(-3, 3)), in_law))
            grandchild_surname = father_surname if child_male else in_law
            age_gc = child_age - randint(22, 32)
            for _ in range(size - 4):
                out.append((GRANDCHILD, rng.random() < 0.515, age_gc if age_gc >= 0 else randint(0, 3),
                            grandchild_surname))
                age_gc -= randint(1, 6)
            return out
        # a couple with children, sometimes with the head's parents
        children = 1 if size == 3 else 2
        parents = size - 2 - children
        if size == 3 and r < 0.12:
            children, parents = 0, 1
        elif size == 4 and r < 0.4:
            children, parents = 1, 1
        age = randint(27, 58) if parents else randint(24, 66)
        out = [(HEAD, head_male, age, s_head), (SPOUSE, not head_male, spouse_age(age), s_spouse)]
        child_age = age - randint(22, 34)
        for _ in range(children):
            out.append((CHILD, rng.random() < 0.515, child_age if child_age >= 0 else randint(0, 2),
                        father_surname))
            child_age -= randint(1, 8)
        if parents == 1:
            mother = rng.random() < 0.6
            out.append((PARENT, not mother, min(98, age + randint(22, 34)),
                        people.surname() if mother else s_head))
        elif parents == 2:
            father_age = min(95, age + randint(23, 33))
            out.append((PARENT, True, father_age, s_head))
            out.append((PARENT, False, max(father_age - randint(0, 5), age + 18), people.surname()))
        return out

    def write_people(self) -> None:
        """Households and residents, grid by grid, flushed in batches.

        (Writing on a second thread while generating was tried: slower, the GIL serialises the two.)
        """
        hh_id = _max_id(Household)
        res_id = _max_id(Resident)
        rng, people = self.rng, self.people
        rand = rng.random
        seal, lookup = crypto.seal, crypto.lookup_hash
        today = self.today
        now = self.now
        households = Writer(Household, ["id", "unit_id", "path", "code", "kind", "building", "entrance", "room",
                                        "house_number", "address", "head_name", "head_initials", "member_count",
                                        "updated_at"])
        residents = Writer(Resident, [
            "id", "household_id", "unit_id", "path", "name", "name_initials", "sex", "birth_date", "id_sealed",
            "id_hash", "id_masked", "id_tail", "phone_sealed", "phone_hash", "phone_masked", "phone_tail",
            "relation", "status", "elderly_alone", "disabled", "pregnant", "chronic_illness", "infant",
            "updated_at"])
        n_households = n_residents = 0
        add_res, add_hh = residents.add, households.add
        no_phone = (b"", "", "", "")
        for grid in self.tree.units:
            if grid.level != 6:
                continue
            label, path, unit_id, code = grid.label, grid.path, grid.id, grid.code
            kind = RURAL if grid.rural else URBAN
            for k, home in enumerate(grid.homes, start=1):
                hh_id += 1
                if len(home) == 3:
                    building, entrance, room = home
                    number = ""
                    address = f"{label}{building}号楼{entrance}单元{room}室"
                else:
                    building = entrance = room = ""
                    number = home[0]
                    address = f"{label}{number}号"
                size = SIZES[bisect(_SIZE_CUM, rand())]
                head_name = head_initials = ""
                for relation, male, age, surname in self.members(size):
                    res_id += 1
                    born = people.birth(age)
                    birth_ord, id_number = people.id_number(born, male)
                    iso = people.day(birth_ord)[0]
                    if birth_ord != born:  # moved by a day: the age may have changed
                        b = dt.date.fromordinal(birth_ord)
                        age = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
                    sex = "M" if male else "F"
                    name = surname + people.given(sex, int(iso[:4]))
                    name_initials = initials(name)
                    if relation == HEAD:
                        head_name, head_initials = name, name_initials
                    if age >= 12 and rand() < (0.7 if age < 18 else 0.98 if age < 70 else 0.8 if age < 80 else 0.5):
                        phone = people.phone()
                        phone_cols = (seal(phone), lookup("phone", phone), mask_phone(phone), phone[-4:])
                    else:
                        phone_cols = no_phone
                    x = rand()
                    if relation != HEAD and x < 0.015:
                        status = MOVED_OUT
                    elif x < (0.10 if 18 <= age <= 45 else 0.035):
                        status = AWAY
                    else:
                        status = PRESENT
                    add_res((
                        res_id, hh_id, unit_id, path, name, name_initials, sex, iso,
                        seal(id_number), lookup("id", id_number), mask_id_number(id_number), id_number[-4:],
                        *phone_cols, relation, status,
                        size == 1 and age >= 65,  # elderly living alone
                        rand() < (0.035 if age >= 50 else 0.01),  # disabled (~2 %)
                        not male and 22 <= age <= 38 and status != MOVED_OUT and rand() < 0.05,  # pregnant
                        age >= 50 and rand() < 0.15,  # chronic illness
                        age < 3,  # infant
                        now,
                    ))
                n_residents += size
                add_hh((hh_id, unit_id, path, f"{code}{k:04d}", kind, building, entrance, room, number, address,
                        head_name, head_initials, size, now))
                n_households += 1
            if len(residents.rows) >= BATCH:
                households.flush()
                residents.flush()
        households.flush()
        residents.flush()
        self.counts["households"], self.counts["residents"] = n_households, n_residents

    # ---- staff and logins ------------------------------------------------------------------------

    def write_units(self) -> None:
        units = Writer(Unit, ["id", "level", "parent_id", "code", "name", "kind", "path", "aliases"])
        for u in self.tree.units:
            units.add((u.id, u.level, u.parent_id, u.code, u.name, str(u.kind), u.path, ""))
        units.flush()

    def write_staff(self) -> None:
        User = get_user_model()
        clash = set(User.objects.values_list("username", flat=True)) & {u for _, u, _ in self.staff_plan}
        if clash:
            raise RegisterNotEmpty(f"user accounts already exist: {', '.join(sorted(clash)[:5])}")
        password = make_password(PASSWORD)  # once: hashing thousands of times would take minutes
        user_id = _max_id(User)
        staff_id = _max_id(Staff)
        users = Writer(User, ["id", "password", "last_login", "is_superuser", "username", "first_name",
                              "last_name", "email", "is_staff", "is_active", "date_joined"])
        staff = Writer(Staff, ["id", "user_id", "unit_id", "role", "name", "phone_sealed", "phone_hash",
                               "phone_masked", "phone_tail"])
        people = self.people
        for unit, username, role in self.staff_plan:
            user_id += 1
            staff_id += 1
            male = self.rng.random() < 0.55
            birth_year = self.today.year - self.rng.randint(24, 58)
            surname = people.surname()
            given = people.given("M" if male else "F", birth_year)
            users.add((user_id, password, None, False, username, given, surname, "", False, True, self.now))
            staff.add((staff_id, user_id, unit.id, str(role), surname + given, *_sealed_phone(people.phone())))
        users.flush()
        staff.flush()
        self.counts["staff"] = staff.count

    def appoint_cadres(self) -> None:
        """三无小区: the old works compounds (家属院, 宿舍 …) and every twelfth compound (from the first) have no property management.
        Through the staff actions, as a district would do it, each is flagged and the community's first staff
        member answers for it (包保), so the generated district has no blind spot."""
        from bihuan.register.staff_actions import do_appoint_leader, do_set_no_property_management

        compounds = [u for u in self.tree.units if u.kind == UnitKind.COMPOUND]
        old = [u for i, u in enumerate(compounds) if u.name.startswith(tuple(OLD_COMPOUNDS)) or i % 12 == 0]
        units = Unit.objects.in_bulk([u.id for u in old] + [u.parent_id for u in old])
        cadres = {s.unit_id: s for s in Staff.objects.filter(unit_id__in=[u.parent_id for u in old]).order_by("id")
                  .select_related("unit").reverse()}  # the first staff member of each community
        for row in old:
            unit = do_set_no_property_management(unit=units[row.id], value=True, acting_user=None)
            cadre = cadres.get(row.parent_id)
            if cadre is not None:
                do_appoint_leader(unit=unit, staff=cadre, duty="包保干部", acting_user=None)
        self.counts["no_property"] = len(old)

    def write_level_names(self) -> None:
        have = set(LevelName.objects.values_list("level", flat=True))
        LevelName.objects.bulk_create(
            [LevelName(level=lv, name_zh=zh, name_en=en) for lv, (zh, en) in LEVEL_NAMES.items() if lv not in have]
        )

    def after_load(self) -> None:
        """PostgreSQL: move the id sequences past the ids written here and refresh the planner's statistics
        (a bulk load leaves them stale until autovacuum comes round)."""
        if connection.vendor != "postgresql":
            return
        written = [Unit, Household, Resident, Staff, get_user_model()]
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), written):
                cursor.execute(sql)
            cursor.execute("ANALYZE " + ", ".join(_qn(m._meta.db_table) for m in written))

    def run(self) -> dict:
        t0 = time.perf_counter()
        self.build_tree()
        levels = {lv: sum(1 for u in self.tree.units if u.level == lv) for lv in range(1, 7)}
        self.out("units: " + ", ".join(f"level {lv} {n}" for lv, n in levels.items()))
        self.write_level_names()
        self.write_units()
        self.write_staff()
        t1 = time.perf_counter()
        self.write_people()
        t2 = time.perf_counter()
        self.after_load()
        self.appoint_cadres()
        self.counts["forces"] = generate_forces(self.p.name, self.seed, self.out)
        generate_inspections(self.p.name, self.seed, self.out)
        self.out(f"households {self.counts['households']:,}, residents {self.counts['residents']:,}, "
                 f"staff {self.counts['staff']:,} (tree and staff {t1 - t0:.1f} s, people {t2 - t1:.1f} s)")
        result = {
            "preset": self.p.name,
            "seed": self.seed,
            "units": levels,
            "households": self.counts["households"],
            "residents": self.counts["residents"],
            "staff": self.counts["staff"],
            "logins": self.logins,
            "more_logins": self.more_logins,
            "password": PASSWORD,
        }
        audit.record(actor=None, action="register.generate", target_type="register",
                     changes={k: result[k] for k in ("preset", "seed", "households", "residents", "staff")}
                     | {"units": {str(k): v for k, v in levels.items()}})
        return result
