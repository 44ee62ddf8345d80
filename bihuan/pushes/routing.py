"""Routing of pushed people (分派) and the opening of their verification loops.

``route_people`` decides, for every newly imported person, which unit verifies them:

1. a registered resident (``person.resident``, or the ID hash found among active residents) → the resident's
   grid (their household's unit), reason ``户籍匹配：<household address>``;
2. else the address text (then the pushed township / community text) matched against unit names, aliases and
   abbreviations, tolerant of province / city / district prefixes: the deepest unit found wins, and the
   verification is owned by its community or village (level 4) unless the building or house number pins
   down exactly one grid;
3. else the command office's manual-dispatch queue (``do_dispatch`` hands them out).

Everything is set-based per call: one in-memory index of the unit tree, a handful of queries for the
residents and households, one ``update_rows`` of the people, and one ``INSERT … SELECT`` each for the loops,
their first events and the verification rows. Every decision is written to ``route_method`` /
``route_reason``; each call leaves one audit row.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.bulk import update_rows
from bihuan.core.errors import Refused
from bihuan.core.roles import Perm
from bihuan.core.tabular import chunks
from bihuan.loops.models import Loop, LoopEvent, LoopState
from bihuan.register.access import require, scoped
from bihuan.register.models import ACTIVE_STATUSES, MAX_LEVEL, SEGMENT, Household, Resident, Unit, UnitKind

from .models import VERIFICATION, PushBatch, PushedPerson, RouteMethod, Verification

CHUNK = 500  # ids per IN (…) list: well under SQLite's parameter limit
REMINDER_INTERVAL = 1800  # seconds between reminders once a verification is overdue (催办)
REMINDER_LIMIT = 3  # reminders before the parent unit is told (督办)
DEFAULT_DEADLINE = "24h"


class RoutingError(Refused):
    """Refused; the message starts with the field's name."""


# --- deadlines -------------------------------------------------------------------------------------------

def parse_deadline(spec: str | None) -> str | timedelta:
    """``"24h"`` (any number of hours) or ``"same_day"`` (end of the local day of the push)."""
    value = (spec or DEFAULT_DEADLINE).strip().lower().replace("-", "_")
    if value in {"same_day", "sameday", "当天", "当日"}:
        return "same_day"
    m = re.fullmatch(r"(\d{1,3})\s*h", value)
    if m and int(m.group(1)) > 0:
        return timedelta(hours=int(m.group(1)))
    raise RoutingError(f"deadline: {spec!r} is neither '<hours>h' nor 'same_day'")


def verification_due(pushed_at: datetime, spec: str | None = None) -> datetime:
    """The verification deadline for a person pushed at ``pushed_at`` (``settings.PUSH_VERIFY_DEADLINE``)."""
    rule = parse_deadline(spec or getattr(settings, "PUSH_VERIFY_DEADLINE", DEFAULT_DEADLINE))
    if rule == "same_day":
        local = timezone.localtime(pushed_at)
        return local.replace(hour=23, minute=59, second=59, microsecond=0)
    return pushed_at + rule


def fresh_due(now: datetime | None = None) -> datetime:
    """A new unit's deadline when a person reaches it later (accepted transfer, return): the same rule from now."""
    return verification_due(now or timezone.now())


# --- the unit index --------------------------------------------------------------------------------------

PROVINCES = ("北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽",
             "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南",
             "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "台湾", "香港", "澳门")
_PROVINCE = re.compile(r"^(?:中国|中华人民共和国)?(?:" + "|".join(PROVINCES) +
                       r")(?:省|市|维吾尔自治区|壮族自治区|回族自治区|自治区|特别行政区)?")
_CITY = re.compile(r"^[\u4e00-\u9fff]{2,4}?(?:市|地区|自治州|盟)(?![场民政委区])")
_OTHER_DISTRICT = re.compile(r"^[\u4e00-\u9fff]{1,4}?(?:区|县|市|旗)")
_NOISE = re.compile(r"[\s·•,，、。;；:：()（）\[\]【】<>《》\"'“”‘’/\\|_-]+")
# Abbreviations: what may be left off a unit's name in an address, by level.
_SUFFIXES = {
    3: ("街道办事处", "街道办", "街道", "办事处", "镇", "乡"),
    4: ("社区居民委员会", "居民委员会", "社区居委会", "居委会", "社区", "村民委员会", "村委会", "村"),
    5: ("小区", "平房区"),
}
_BUILDING = re.compile(r"^(?:[a-z]?\d{1,4}[a-z]?|[一二三四五六七八九十]{1,3})(?:号楼|栋|幢|座|号院|#楼|#)")
_HOUSE = re.compile(r"^(\d{1,4})号")
CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九", start=0)}


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, no spaces or punctuation."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text or "")).lower()


def _cn_number(value: str) -> str:
    if value.isdigit():
        return str(int(value))
    if all(c in CN_DIGITS or c == "十" for c in value):
        if "十" in value:
            head, _, tail = value.partition("十")
            return str((CN_DIGITS.get(head, 1) if head else 1) * 10 + (CN_DIGITS.get(tail, 0) if tail else 0))
        return "".join(str(CN_DIGITS[c]) for c in value)
    return value


@dataclass
class UnitInfo:
    id: int
    parent_id: int | None
    level: int
    kind: str
    name: str
    path: str


@dataclass
class Match:
    units: list[UnitInfo]  # every unit the key names (a key can be ambiguous)
    key: str
    end: int  # where the key ends in the text


@dataclass
class Decision:
    unit: UnitInfo | None
    method: str
    reason: str
    matched: UnitInfo | None = None  # the deepest unit named (to look a grid up under it)
    rest: str = ""  # the text after the deepest unit's name (building, room, house number)


@dataclass
class UnitIndex:
    """The unit tree in memory with every spelling of every unit name (a few thousand units)."""

    units: dict[int, UnitInfo] = field(default_factory=dict)
    by_path: dict[str, UnitInfo] = field(default_factory=dict)
    keys: dict[str, list[UnitInfo]] = field(default_factory=dict)
    by_head: dict[str, list[str]] = field(default_factory=dict)  # first two characters -> keys, longest first
    district_names: list[str] = field(default_factory=list)  # the level-1 names and aliases, longest first
    offices: dict[str, UnitInfo] = field(default_factory=dict)  # level-1 path -> its command office
    children: dict[int, list[UnitInfo]] = field(default_factory=dict)
    _chains: dict[int, frozenset[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows=None) -> UnitIndex:
        """From the register (or from ``rows`` of (id, parent_id, level, kind, name, path, aliases) in path
        order)."""
        idx = cls()
        if rows is None:
            rows = Unit.objects.order_by("path").values_list("id", "parent_id", "level", "kind", "name", "path",
                                                             "aliases")
        aliases: dict[int, list[str]] = {}
        for pk, parent_id, level, kind, name, path, alias_text in rows:
            info = UnitInfo(pk, parent_id, level, kind, name, path)
            idx.units[pk] = info
            idx.by_path[path] = info
            if parent_id:
                idx.children.setdefault(parent_id, []).append(info)
            aliases[pk] = [a for a in (alias_text or "").split("|") if a.strip()]
            if level == 1:
                idx.district_names += [normalize(n) for n in [name, *aliases[pk]] if normalize(n)]
            elif kind == UnitKind.COMMAND_OFFICE:
                idx.offices.setdefault(path[:SEGMENT], info)
        idx.district_names.sort(key=len, reverse=True)
        spellings: dict[str, set[int]] = defaultdict(set)
        for info in idx.units.values():
            if not 3 <= info.level < MAX_LEVEL:
                continue  # grids are not named in addresses; levels 1–2 are not places
            for key in idx._spellings(info, aliases[info.id]):
                if len(key) >= 2:
                    spellings[key].add(info.id)
        for key, ids in spellings.items():
            idx.keys[key] = [idx.units[i] for i in sorted(ids)]
            idx.by_head.setdefault(key[:2], []).append(key)
        for keys in idx.by_head.values():
            keys.sort(key=len, reverse=True)
        return idx

    @classmethod
    def cached(cls) -> UnitIndex:
        """The index, rebuilt only when the unit rows differ from the last build's: the importer routes every
        500 rows, and reading the units is ~10 ms at yaodu scale where building the index is ~100 ms."""
        rows = list(Unit.objects.order_by("path").values_list("id", "parent_id", "level", "kind", "name", "path",
                                                              "aliases"))
        sig = hash(tuple(rows))
        hit = _INDEX_CACHE.get("index")
        if hit is not None and _INDEX_CACHE.get("sig") == sig:
            return hit
        idx = cls.build(rows)
        _INDEX_CACHE.update(index=idx, sig=sig)
        return idx

    def _spellings(self, info: UnitInfo, alias_list: list[str]) -> set[str]:
        names = {normalize(info.name), *(normalize(a) for a in alias_list)}
        out = set(names)
        for n in names:
            out.add(_strip_suffix(n, info.level))
        if info.kind == UnitKind.VILLAGER_GROUP and info.parent_id in self.units:
            # 东羊村一组 ~ 东羊一组: the group's own part with the village's full or short name in front.
            village = self.units[info.parent_id]
            full = normalize(village.name)
            short = _strip_suffix(full, 4)
            for n in names:
                for prefix in (full, short):
                    if n.startswith(prefix) and len(n) > len(prefix):
                        own = n[len(prefix):]
                        out |= {full + own, short + own}
        return {s for s in out if s}

    # -- reading an address --------------------------------------------------------------------------

    def strip_prefixes(self, text: str) -> tuple[str, str]:
        """Drop the province, city and (our) district in front. Returns (rest, foreign district or "")."""
        for name in self.district_names:  # …尧都区 near the start: everything before it is province and city
            i = text.find(name, 0, 12 + len(name))
            if i >= 0 and len(text) > i + len(name) and not self.scan(text[:i]):
                return text[i + len(name):], ""
        had_region = False
        m = _PROVINCE.match(text)
        if m and m.end() < len(text):
            text, had_region = text[m.end():], True
        m = _CITY.match(text)
        if m and m.end() < len(text):
            text, had_region = text[m.end():], True
        for name in self.district_names:
            if text.startswith(name) and len(text) > len(name):
                return text[len(name):], ""
        if had_region:
            m = _OTHER_DISTRICT.match(text)
            if m and not self.keys_at(text, 0):
                return text, m.group(0)
        return text, ""

    def keys_at(self, text: str, i: int) -> str:
        """The longest key starting at ``text[i]`` (or "")."""
        for key in self.by_head.get(text[i:i + 2], ()):
            if text.startswith(key, i):
                return key
        return ""

    def scan(self, text: str) -> list[Match]:
        """Longest-match segmentation: every unit name in the text, left to right, without overlaps."""
        out, i = [], 0
        while i < len(text) - 1:
            key = self.keys_at(text, i)
            if key:
                out.append(Match(self.keys[key], key, i + len(key)))
                i += len(key)
            else:
                i += 1
        return out

    def chain(self, info: UnitInfo) -> frozenset[int]:
        """The unit and its ancestors (cached: a few thousand units)."""
        found = self._chains.get(info.id)
        if found is None:
            found = self._chains[info.id] = frozenset(
                self.by_path[p].id for p in (info.path[:SEGMENT * k] for k in range(1, info.level + 1))
                if p in self.by_path)
        return found

    def ancestor_at(self, info: UnitInfo, level: int) -> UnitInfo:
        return self.by_path.get(info.path[:SEGMENT * level], info) if info.level > level else info

    def lowest_common(self, infos: list[UnitInfo]) -> UnitInfo | None:
        paths = [u.path for u in infos]
        common = paths[0]
        for p in paths[1:]:
            n = 0
            while n < min(len(common), len(p)) and common[n] == p[n]:
                n += 1
            common = common[: n - n % SEGMENT]
        return self.by_path.get(common)

    def office_for(self, path: str) -> UnitInfo | None:
        return self.offices.get(path[:SEGMENT]) or next(iter(self.offices.values()), None)

    def decide(self, address: str, township: str = "", community: str = "") -> Decision:
        """Route by address text; the pushed township / community only break ties or stand in for it."""
        text, foreign = self.strip_prefixes(normalize(address))
        if foreign:
            return Decision(None, RouteMethod.MANUAL, f"地址不在本区（{foreign}）：{address[:120]}")
        context: list[Match] = []
        for extra in (township, community):
            extra_text = self.strip_prefixes(normalize(extra))[0] if extra else ""
            if extra_text:
                context += self.scan(extra_text)
        matches = self.scan(text)
        source = "地址匹配"
        if not matches:
            if not context:
                return Decision(None, RouteMethod.MANUAL,
                                f"未匹配到单位：{address[:120]}" if address.strip() else "无地址")
            matches, context, source = context, [], "按推送的乡镇（街道）/社区（村）匹配"
        candidates: dict[int, UnitInfo] = {u.id: u for m in matches for u in m.units}
        named = [{u.id for u in m.units} for m in matches]
        hinted = [{u.id for u in m.units} for m in context]

        def score(u: UnitInfo) -> tuple[int, int, int]:
            ids = self.chain(u)
            return (sum(1 for s in named if s & ids), sum(1 for s in hinted if s & ids), u.level)

        scores = {u.id: score(u) for u in candidates.values()}
        best_score = max(scores.values())
        best = [u for u in candidates.values() if scores[u.id] == best_score]
        names = " › ".join(m.key for m in matches)
        if len(best) == 1:
            unit = best[0]
            end = max((m.end for m in matches if any(x.id == unit.id for x in m.units)), default=len(text))
            return Decision(self.ancestor_at(unit, 4), RouteMethod.ADDRESS, f"{source}：{names}", unit, text[end:])
        common = self.lowest_common(best)
        if common is not None and common.level >= 3:
            owner = self.ancestor_at(common, 4)
            return Decision(owner, RouteMethod.ADDRESS,
                            f"{source}：{names}（有 {len(best)} 处同名，交{owner.name}）")
        return Decision(None, RouteMethod.MANUAL,
                        f"地址有歧义：{names}（{'、'.join(u.name for u in best[:4])}）")


_INDEX_CACHE: dict = {}  # the last unit index built, with the hash of the rows it was built from


def _strip_suffix(name: str, level: int) -> str:
    for suffix in _SUFFIXES.get(level, ()):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _building_or_house(rest: str) -> tuple[str, str]:
    """("3", "") for 3号楼…, ("", "12") for 12号, from the text right after a compound or group name."""
    m = _BUILDING.match(rest)
    if m:
        raw = re.sub(r"(号楼|栋|幢|座|号院|#楼|#)$", "", m.group(0))
        return _cn_number(raw), ""
    m = _HOUSE.match(rest)
    if m:
        return "", str(int(m.group(1)))
    return "", ""


# --- routing ---------------------------------------------------------------------------------------------

def _resident_matches(people: list[PushedPerson]) -> dict[int, tuple[int, int, str, str]]:
    """person id -> (resident id, unit id, unit path, household address), for residents found."""
    by_resident = {p.resident_id: p.pk for p in people if p.resident_id}
    by_hash = defaultdict(list)
    for p in people:
        if not p.resident_id and p.id_hash:
            by_hash[p.id_hash].append(p.pk)
    out: dict[int, tuple[int, int, str, str]] = {}
    fields = ("id", "id_hash", "unit_id", "path", "household__address")
    for ids in chunks(list(by_resident), CHUNK):
        for rid, _h, unit_id, path, address in Resident.objects.filter(pk__in=ids).values_list(*fields):
            out[by_resident[rid]] = (rid, unit_id, path, address)
    for hashes in chunks(list(by_hash), CHUNK):
        rows = (Resident.objects.filter(id_hash__in=hashes, status__in=ACTIVE_STATUSES)
                .order_by("id").values_list(*fields))
        for rid, h, unit_id, path, address in rows:
            for pid in by_hash.pop(h, []):
                out[pid] = (rid, unit_id, path, address)
    return out


def _grids_by_building(idx: UnitIndex, wanted: dict[int, tuple[UnitInfo, str, str]]) -> dict[int, UnitInfo]:
    """person id -> grid, where the building (urban) or house number (rural) under the named compound or
    villager group belongs to exactly one grid. One query for the whole call: the (grid, building / house)
    pairs asked about, joined to the households on their grid (an index lookup each)."""
    pairs: set[tuple[int, str, str]] = set()
    for parent, building, house in wanted.values():
        for g in idx.children.get(parent.id, []):
            if g.level != MAX_LEVEL:
                continue
            pairs.add((g.id, "b", building) if building else (g.id, "h", house))
    if not pairs:
        return {}
    household_t = _q(Household._meta.db_table)
    found: dict[tuple[int, str, str], set[int]] = defaultdict(set)
    with connection.cursor() as cur:
        for chunk in chunks(sorted(pairs), 2000):
            cur.execute(
                f"WITH w(grid, kind, value) AS (VALUES {', '.join(['(CAST(%s AS BIGINT), %s, %s)'] * len(chunk))}) "
                f"SELECT DISTINCT w.grid, w.kind, w.value FROM w JOIN {household_t} h ON h.unit_id = w.grid "
                "AND ((w.kind = 'b' AND h.building IN (w.value, w.value || '号楼', w.value || '栋', w.value || '幢')) "
                "OR (w.kind = 'h' AND h.house_number IN (w.value, w.value || '号')))",
                [x for pair in chunk for x in pair])
            for grid, kind, value in cur.fetchall():
                found[(idx.units[grid].parent_id, kind, value)].add(grid)
    out = {}
    for pid, (parent, building, house) in wanted.items():
        grids = found.get((parent.id, "b", building) if building else (parent.id, "h", house), set())
        if len(grids) == 1:
            out[pid] = idx.units[next(iter(grids))]
    return out


def route_people(person_ids: list[int], *, acting_user, deadline: str | None = None) -> None:
    """Route newly imported people and open their verification loops (see the module docstring).

    Idempotent: people already routed are skipped, so a crashed import can call it again. ``deadline``
    overrides ``settings.PUSH_VERIFY_DEADLINE`` (``"24h"``, ``"same_day"``).
    """
    ids = sorted(set(person_ids))
    if not ids:
        return
    parse_deadline(deadline or getattr(settings, "PUSH_VERIFY_DEADLINE", DEFAULT_DEADLINE))  # fail early
    people: list[PushedPerson] = []
    for chunk in chunks(ids, CHUNK):
        people += list(PushedPerson.objects.filter(pk__in=chunk, routed_at__isnull=True).only(
            "id", "resident_id", "id_hash", "address_text", "township_text", "community_text", "first_batch_id",
            "first_pushed_at"))
    if not people:
        return
    idx = UnitIndex.cached()
    batch_units = dict(PushBatch.objects.filter(pk__in={p.first_batch_id for p in people})
                       .values_list("id", "unit__path"))
    now = timezone.now()
    residents = _resident_matches(people)
    decisions: dict[int, Decision] = {}
    cache: dict[tuple[str, str, str], Decision] = {}
    for p in people:
        if p.pk in residents:
            continue
        key = (p.address_text, p.township_text, p.community_text)
        if key not in cache:
            cache[key] = idx.decide(*key)
        decisions[p.pk] = cache[key]
    wanted = {}
    for pid, d in decisions.items():
        if d.matched is not None and d.matched.level == MAX_LEVEL - 1:
            building, house = _building_or_house(d.rest)
            if building or house:
                wanted[pid] = (d.matched, building, house)
    grids = _grids_by_building(idx, wanted)

    counts: Counter = Counter()
    for p in people:
        p.routed_at = now
        if p.pk in residents:
            rid, unit_id, path, address = residents[p.pk]
            p.resident_id, p.unit_id, p.path = rid, unit_id, path
            p.route_method, p.route_reason = RouteMethod.RESIDENT, f"户籍匹配：{address}"[:300]
        else:
            d = decisions[p.pk]
            unit = grids.get(p.pk) or d.unit
            if unit is None:
                office = idx.office_for(batch_units.get(p.first_batch_id, ""))
                if office is None:
                    raise RoutingError("unit: the register has no command office for the manual-dispatch queue")
                unit, reason = office, f"{d.reason}，待指挥部人工分派"
            elif p.pk in grids:
                building, house = wanted[p.pk][1:]
                where = f"{building}号楼" if building else f"{house}号"
                reason = f"{d.reason} {where} → {unit.name}"
            else:
                reason = f"{d.reason} → {unit.name}"
            p.unit_id, p.path = unit.id, unit.path
            p.route_method, p.route_reason = d.method, reason[:300]
        counts[p.route_method] += 1
    with transaction.atomic():
        _write_decisions(people)
        open_verifications(people, acting_user=acting_user, deadline=deadline)
        audit.record(actor=acting_user, action="push.route", target_type="pushes.pushbatch",
                     target_id=",".join(str(b) for b in sorted(batch_units))[:64],
                     changes={"people": len(people), "by_method": dict(counts),
                              "first": people[0].pk, "last": people[-1].pk})


def _write_decisions(people: list[PushedPerson]) -> None:
    update_rows(PushedPerson, people, ["resident", "unit", "path", "route_method", "route_reason", "routed_at"])


# --- the verification loops, set-based -------------------------------------------------------------------

def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value: datetime | None):
    return connection.ops.adapt_datetimefield_value(value) if value else None


def _defaults_select(model, overrides: dict[str, tuple[str, list]]) -> tuple[list[str], list[str], list]:
    """Columns, SELECT expressions and their parameters for every concrete column of ``model``: the SQL given
    in ``overrides`` (column -> (expression, parameters)), else the field's default as a parameter, so a field
    added later with a default keeps working."""
    cols, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        cols.append(_q(f.column))
        if f.column in overrides:
            expr, values = overrides[f.column]
            exprs.append(expr)
            params += values
        else:
            value = f.get_default()
            exprs.append("%s")
            params.append(f.get_db_prep_save(value, connection) if value is not None else None)
    return cols, exprs, params


def open_verifications(people: list[PushedPerson], *, acting_user, deadline: str | None = None) -> None:
    """One VERIFICATION loop per routed person (owned by their unit, started by the uploading unit) and its
    verification row, in one INSERT … SELECT per deadline. Idempotent (unique constraints)."""
    loop_t, event_t, unit_t = _q(Loop._meta.db_table), _q(LoopEvent._meta.db_table), _q(Unit._meta.db_table)
    person_t, batch_t, ver_t = (_q(PushedPerson._meta.db_table), _q(PushBatch._meta.db_table),
                                _q(Verification._meta.db_table))
    now = timezone.now()
    groups: dict[datetime, list[int]] = defaultdict(list)
    for p in people:
        # Push times floored to the minute: one INSERT per minute of pushes, not per person (a deadline at
        # most 59 s early).
        groups[verification_due(p.first_pushed_at.replace(second=0, microsecond=0), deadline)].append(p.pk)
    user_id = getattr(acting_user, "pk", None)
    with connection.cursor() as cur:
        for due, pids in groups.items():
            for chunk in chunks(pids, CHUNK):
                marks = ", ".join(["%s"] * len(chunk))
                cur.execute(
                    f"INSERT INTO {loop_t} (kind, subject_id, title, owner_unit_id, path, level, originator_unit_id, "
                    "originator_user_id, state, ack_due_at, due_at, reminder_interval, reminder_limit, "
                    "reminders_sent, next_reminder_at, data, locked_by, created_at) "
                    f"SELECT %s, p.id, CAST(%s AS VARCHAR(20)) || p.name, u.id, u.path, u.level, b.unit_id, %s, %s, "
                    f"NULL, %s, %s, %s, 0, %s, %s, '', %s FROM {person_t} p "
                    f"JOIN {unit_t} u ON u.id = p.unit_id JOIN {batch_t} b ON b.id = p.first_batch_id "
                    f"WHERE p.id IN ({marks}) ON CONFLICT (kind, subject_id, owner_unit_id) DO NOTHING",
                    [VERIFICATION, "核查：", user_id, LoopState.ISSUED, _dt(due), REMINDER_INTERVAL, REMINDER_LIMIT,
                     _dt(due), "{}", _dt(now), *chunk])
        for chunk in chunks([p.pk for p in people], CHUNK):
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(
                f"INSERT INTO {event_t} (loop_id, at, actor_id, action, from_state, to_state, note) "
                f"SELECT l.id, %s, %s, 'issued', '', 'issued', '' FROM {loop_t} l "
                f"WHERE l.kind = %s AND l.subject_id IN ({marks}) AND NOT EXISTS "
                f"(SELECT 1 FROM {event_t} e WHERE e.loop_id = l.id AND e.action = 'issued')",
                [_dt(now), user_id, VERIFICATION, *chunk])
            cols, exprs, params = _defaults_select(Verification, {
                "person_id": ("p.id", []), "loop_id": ("l.id", []), "origin": ("p.origin", []),
                "arrival_date": ("p.arrival_date", []), "updated_at": ("%s", [_dt(now)])})
            cur.execute(
                f"INSERT INTO {ver_t} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {person_t} p "
                f"JOIN {loop_t} l ON l.kind = %s AND l.subject_id = p.id "
                f"WHERE p.id IN ({marks}) ON CONFLICT (person_id) DO NOTHING",
                [*params, VERIFICATION, *chunk])


# --- re-owning a loop (dispatch, accepted transfer) ------------------------------------------------------

def reassign_loop(loop: Loop, unit: Unit, *, actor, action: str, note: str, due_at: datetime | None = None) -> Loop:
    """Hand a person's verification loop to another unit: the same loop (its history stays in one place),
    a new owner, reminders from zero, optionally a new deadline. Call inside the caller's transaction."""
    loop = Loop.objects.select_for_update().get(pk=loop.pk)
    before = loop.owner_unit_id
    loop.owner_unit, loop.path, loop.level = unit, unit.path, unit.level
    loop.owner_user = None
    if due_at is not None:
        loop.due_at = due_at
    loop.reminders_sent, loop.escalated_at = 0, None
    loop.next_reminder_at = loop.due_at if loop.is_open else None
    loop.save()
    LoopEvent.objects.create(loop=loop, actor=actor, action=action, from_state=loop.state, to_state=loop.state,
                             note=note[:2000])
    audit.record(actor=actor, action=f"loop.{action}", target=loop, changes={"owner_unit": [before, unit.pk]})
    return loop


def check_target_unit(person: PushedPerson, unit: Unit) -> None:
    """A unit that may verify a person: levels 3–6 of the same district, not a desk (office, department)."""
    if unit.level < 3 or unit.kind in (UnitKind.COMMAND_OFFICE, UnitKind.DEPARTMENT):
        raise RoutingError("unit: choose a township, community, village, compound or grid")
    if person.path and unit.path[:SEGMENT] != person.path[:SEGMENT]:
        raise RoutingError("unit: that unit is in another district")
    if unit.pk == person.unit_id:
        raise RoutingError("unit: the person is already there")


def is_in_queue(person: PushedPerson) -> bool:
    return person.route_method == RouteMethod.MANUAL and person.unit is not None and (
        person.unit.kind == UnitKind.COMMAND_OFFICE)


def do_dispatch(person: PushedPerson, unit: Unit, *, acting_user) -> PushedPerson:
    """The command office hands a person from its manual-dispatch queue to a unit. The push deadline stays."""
    require(acting_user, Perm.DISPATCH_PUSH)
    with transaction.atomic():
        person = scoped(acting_user, PushedPerson.objects.select_for_update()).filter(pk=person.pk).first()
        if person is None:
            raise PermissionDenied("that person is not in your part of the district")
        person = PushedPerson.objects.select_related("unit").get(pk=person.pk)
        if not is_in_queue(person):
            raise RoutingError("person: already dispatched; use a transfer (转办) to move them")
        check_target_unit(person, unit)
        before = person.unit_id
        person.unit, person.path = unit, unit.path
        person.route_reason = f"人工分派：{unit.name}（{person.route_reason}）"[:300]
        person.routed_at = timezone.now()
        person.save(update_fields=["unit", "path", "route_reason", "routed_at"])
        ver = Verification.objects.filter(person=person).select_related("loop").first()
        if ver is not None and ver.loop is not None:
            reassign_loop(ver.loop, unit, actor=acting_user, action="dispatched", note=f"人工分派 → {unit.name}")
        audit.record(actor=acting_user, action="push.dispatch", target=person,
                     changes={"unit": [before, unit.pk]})
    return person


def push_day_bounds(day: dt.date) -> tuple[datetime, datetime]:
    """The local day as an aware half-open interval."""
    start = timezone.make_aware(datetime.combine(day, dt.time.min))
    return start, start + timedelta(days=1)
