"""The address index and the routing rules: which unit an address names (``UnitIndex.decide``), which grid a
building or house number under a compound or villager group pins down (``grids_by_building``), and which
units may verify a person (``check_target_unit``). Reads only; ``routing.route_people`` writes the decisions.

Addresses are read with the one place-name parser (``bihuan.policy.places``): the province, city and (our)
district in front are dropped, then the longest unit names found left to right decide, tolerant of the
suffixes a unit's name may lose (``东羊村`` ~ ``东羊``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from bihuan.core.errors import Refused
from bihuan.core.tabular import chunks
from bihuan.policy import places
from bihuan.register.models import MAX_LEVEL, SEGMENT, Household, Unit, UnitKind

from .models import PushedPerson, RouteMethod

# The kind of place (``places.SUFFIXES``) a unit of each level is named as in an address.
LEVEL_KIND = {3: "township", 4: "community", 5: "compound"}


class RoutingError(Refused):
    """A routing decision was refused (a dispatch or transfer to a unit that may not verify the person)."""


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
                idx.district_names += [places.normalize(n) for n in [name, *aliases[pk]] if places.normalize(n)]
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
        names = {places.normalize(info.name), *(places.normalize(a) for a in alias_list)}
        out = set(names)
        for n in names:
            out.add(places.strip_suffix(n, LEVEL_KIND.get(info.level, "")))
        if info.kind == UnitKind.VILLAGER_GROUP and info.parent_id in self.units:
            # 东羊村一组 ~ 东羊一组: the group's own part with the village's full or short name in front.
            village = self.units[info.parent_id]
            full = places.normalize(village.name)
            short = places.strip_suffix(full, LEVEL_KIND[4])
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
        text, had_region = places.strip_region(text)
        for name in self.district_names:
            if text.startswith(name) and len(text) > len(name):
                return text[len(name):], ""
        if had_region:
            county = places.county_at_start(text)
            if county and not self.keys_at(text, 0):
                return text, county
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
        text, foreign = self.strip_prefixes(places.normalize(address))
        if foreign:
            return Decision(None, RouteMethod.MANUAL, f"地址不在本区（{foreign}）：{address[:120]}")
        context: list[Match] = []
        for extra in (township, community):
            extra_text = self.strip_prefixes(places.normalize(extra))[0] if extra else ""
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


def grids_by_building(idx: UnitIndex, wanted: dict[int, tuple[UnitInfo, str, str]]) -> dict[int, UnitInfo]:
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
    household_t = connection.ops.quote_name(Household._meta.db_table)
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

