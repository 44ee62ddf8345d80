"""Chinese place names as people and other systems type them: the one parser, with the one table of
administrative suffixes. Used to match risk areas (``policy.rules``) and to route pushed addresses to the
district's units (``pushes.address``).

- ``normalize(text)``: full-width to half-width, lower case, no spaces or punctuation (addresses);
  ``normalize_place(text)``: full-width to half-width, no spaces (place names, codes kept).
- ``SUFFIXES``: what ends a place name, by the kind of place; ``strip_suffix`` leaves the short name
  (``东羊村`` → ``东羊``), ``name_segments`` cuts a full name into its parts with their stems
  (``上海市浦东新区`` → (``上海市``, ``上海``), (``浦东新区``, ``浦东``)).
- ``strip_region``: the province and city in front of an address; ``code_prefix``: the significant digits
  of a GB/T 2260 code; ``split_places``: a route (``北京、天津→石家庄``) as its places; ``building_or_house``:
  the building or house number right after a compound or group name.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# What may end a place name, by the kind of place, longest first within each kind.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "province": ("特别行政区", "自治区", "省", "市"),
    "city": ("自治州", "地区", "盟", "市"),
    "county": ("自治县", "自治旗", "新区", "林区", "区", "县", "旗", "市"),
    "township": ("街道办事处", "街道办", "街道", "办事处", "镇", "乡"),
    "community": ("社区居民委员会", "居民委员会", "社区居委会", "居委会", "社区", "村民委员会", "村委会", "村"),
    "compound": ("小区", "平房区"),
}
ADMINISTRATIVE = ("province", "city", "county", "township")  # the kinds a risk area can be
ETHNIC = ("维吾尔", "壮族", "回族")  # 新疆维吾尔自治区: the people's name stands before the suffix

PROVINCES = ("北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "上海", "江苏", "浙江", "安徽",
             "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "重庆", "四川", "贵州", "云南",
             "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆", "台湾", "香港", "澳门")


def _longest_first(*kinds: str) -> tuple[str, ...]:
    return tuple(sorted(dict.fromkeys(s for k in kinds for s in SUFFIXES[k]), key=len, reverse=True))


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in words)


ADMIN_SUFFIXES = _longest_first(*ADMINISTRATIVE)
_SEGMENT = re.compile(f"(.+?(?:{_alternatives(ADMIN_SUFFIXES)}))")
_ETHNIC_END = re.compile(f"({_alternatives(ETHNIC)})$")
_ADMIN_WORD = re.compile(f".(?:{_alternatives(ADMIN_SUFFIXES)})")  # 长春市 names a place; 中国, 来自 do not
_PROVINCE = re.compile(f"^(?:中国|中华人民共和国)?(?:{_alternatives(PROVINCES)})"
                       f"(?:(?:{_alternatives(ETHNIC)})?(?:{_alternatives(SUFFIXES['province'])}))?")
_CITY = re.compile(f"^[\u4e00-\u9fff]{{2,4}}?(?:{_alternatives(SUFFIXES['city'])})(?![场民政委区])")
_COUNTY = re.compile(f"^[\u4e00-\u9fff]{{1,4}}?(?:{_alternatives(s for s in SUFFIXES['county'] if len(s) == 1)})")
_CODE = re.compile(r"(?<!\d)(\d{12}|\d{9}|\d{6})(?!\d)")
_SPACE = re.compile(r"\s+")
_NOISE = re.compile(r"[\s·•,，、。;；:：()（）\[\]【】<>《》\"'“”‘’/\\|_-]+")
_VIA_SPLIT = re.compile(r"[、,，;；/|→>＞\n]+|-{1,2}>|—+")
_BUILDING = re.compile(r"^(?:[a-z]?\d{1,4}[a-z]?|[一二三四五六七八九十]{1,3})(?:号楼|栋|幢|座|号院|#楼|#)")
_BUILDING_END = re.compile(r"(号楼|栋|幢|座|号院|#楼|#)$")
_HOUSE = re.compile(r"^(\d{1,4})号")
CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}


# --- normal forms ----------------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """An address for matching: full-width to half-width, lower case, no spaces or punctuation."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text or "")).lower()


def normalize_place(text: str) -> str:
    """A place name or code: NFKC (full-width digits and letters), no spaces."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or ""))


# --- names and their parts -------------------------------------------------------------------------------

def strip_suffix(name: str, kind: str) -> str:
    """The short name without the suffix of its kind (``东羊村`` → ``东羊``), if two characters remain."""
    for suffix in SUFFIXES.get(kind, ()):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def stem(segment: str) -> str:
    """An administrative part without its suffix and people's name (``浦东新区`` → ``浦东``), or "" if less
    than two characters would be left."""
    for suffix in ADMIN_SUFFIXES:
        if segment.endswith(suffix) and len(segment) > len(suffix):
            short = _ETHNIC_END.sub("", segment[: -len(suffix)])
            return short if len(short) >= 2 else ""
    return ""


@lru_cache(maxsize=8192)
def name_segments(name: str) -> tuple[tuple[str, str], ...]:
    """``上海市浦东新区`` → ((``上海市``, ``上海``), (``浦东新区``, ``浦东``)): each part and its stem (or "")."""
    text = normalize_place(name)
    parts = _SEGMENT.findall(text)
    rest = text[sum(len(p) for p in parts):]
    if rest:
        if parts and rest in ADMIN_SUFFIXES:  # 沙市 + 区 → 沙市区
            parts[-1] += rest
        else:
            parts.append(rest)
    return tuple((p, stem(p)) for p in parts)


def names_a_place(text: str) -> bool:
    """Whether the text holds an administrative name (``长春市``), not just words (``中国``, ``来自``)."""
    return bool(_ADMIN_WORD.search(text))


def strip_region(text: str) -> tuple[str, bool]:
    """An address (``normalize``d) without the province and city in front: (the rest, whether any was
    dropped). What is left is never empty."""
    dropped = False
    m = _PROVINCE.match(text)
    if m and m.end() < len(text):
        text, dropped = text[m.end():], True
    m = _CITY.match(text)
    if m and m.end() < len(text):
        text, dropped = text[m.end():], True
    return text, dropped


def county_at_start(text: str) -> str:
    """The county-level name an address starts with (``朝阳区…`` → ``朝阳区``), or ""."""
    m = _COUNTY.match(text)
    return m.group(0) if m else ""


# --- codes, routes, numbers ------------------------------------------------------------------------------

def codes_in(text: str) -> list[str]:
    """The GB/T 2260 codes (6, 9 or 12 digits) in a place text, as their significant prefixes."""
    return [code_prefix(c) for c in _CODE.findall(text)]


def code_prefix(code: str) -> str:
    """The significant part of a GB/T 2260 code: 310000 → 31, 310100 → 3101, 310115125 → 310115125."""
    code = normalize_place(code)
    if not code.isdigit():
        return ""
    while len(code) > 6 and code.endswith("000"):
        code = code[:-3]
    if len(code) == 6:
        while len(code) > 2 and code.endswith("00"):
            code = code[:-2]
    return code


def split_places(text: str) -> list[str]:
    """``北京市、天津市→石家庄`` → [``北京市``, ``天津市``, ``石家庄``]."""
    return [p.strip() for p in _VIA_SPLIT.split(text or "") if p.strip()]


def cn_number(value: str) -> str:
    """``12`` → ``12``, ``十二`` → ``12``, ``三`` → ``3``; anything else as it is."""
    if value.isdigit():
        return str(int(value))
    if value and all(c in CN_DIGITS or c == "十" for c in value):
        if "十" in value:
            head, _, tail = value.partition("十")
            return str((CN_DIGITS.get(head, 1) if head else 1) * 10 + (CN_DIGITS.get(tail, 0) if tail else 0))
        return "".join(str(CN_DIGITS[c]) for c in value)
    return value


def building_or_house(rest: str) -> tuple[str, str]:
    """("3", "") for 3号楼…, ("", "12") for 12号, from the text right after a compound or group name."""
    m = _BUILDING.match(rest)
    if m:
        return cn_number(_BUILDING_END.sub("", m.group(0))), ""
    m = _HOUSE.match(rest)
    if m:
        return "", str(int(m.group(1)))
    return "", ""
