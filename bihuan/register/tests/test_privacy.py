"""Masking that holds (issue 16): for every role, read every list, page, API route and export it can, and try to
rebuild full ID numbers from what it read; departments see pseudonyms; exports are masked by default; bulk reads,
reveals and full exports are audited; reveals need a reason and are throttled."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re

import openpyxl
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import translation

from bihuan.core import reveal
from bihuan.core.models import AuditEntry
from bihuan.core.personal import id_checksum
from bihuan.core.reveal import Throttled
from bihuan.core.roles import PERMISSIONS, Perm, Role
from bihuan.register.models import Household, Resident
from bihuan.testing import API_BASE, HX, api_call, bearer, create_household, create_resident, create_staff

REGION = "141002"  # the district's code, which an attacker reads from any address or unit


@pytest.fixture
def d(district):
    """The base district, an inspector and a volunteer (the roles without reveal besides departments), and more
    residents of branch A so that lists have several pages of people to rebuild."""
    district.users["inspector"] = create_staff(district.district, "inspector", Role.INSPECTOR).user
    district.users["volunteer"] = create_staff(district.community_a, "volunteer", Role.VOLUNTEER).user
    household = create_household(district.grid_a, "锦悦小区5号楼1单元101")
    for i, birth in enumerate([dt.date(1990, 1, 1), dt.date(2001, 12, 31), dt.date(1966, 7, 15)]):
        create_resident(household, ["陈一", "周二", "吴三"][i], birth, "MF"[i % 2], phone=f"1391234{i:04d}")
    return district


def _clear_ids() -> dict[int, str]:
    return {r.pk: r.reveal_id_number() for r in Resident.objects.exclude(id_hash="")}


def _xlsx_text(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return "\n".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row
                     if c.value is not None)


def _export_routes(resolver=None, prefix=""):
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from _export_routes(p, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and str(p.pattern).rstrip("$").endswith(".xlsx"):
            yield prefix + str(p.pattern)


def _export_url(route: str, d) -> str | None:
    """The URL of an export route for the base district; None for routes about objects the fixture lacks."""
    values = {"unit_id": d.district.pk}
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    if any(n not in values for n in names):
        return None
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: str(values[m.group(2)]), route)
    return "/" + path.lstrip("^").replace("\\", "") + f"?unit={d.district.pk}"


def read_everything(client, d, username: str) -> str:
    """All that ``username`` can read of the register: API lists and details, pages, exports (default GET)."""
    user = d.users[username]
    auth = bearer(user)
    out = []
    for url in (f"{API_BASE}/residents?limit=200", f"{API_BASE}/households?limit=200",
                f"{API_BASE}/units/{d.district.pk}/blind-spots", f"{API_BASE}/residents?limit=200&q=王建国"):
        response = api_call(client, auth, "GET", url)
        if response.status_code == 200:
            out.append(response.content.decode())
    for household in Household.objects.all():
        response = api_call(client, auth, "GET", f"{API_BASE}/households/{household.pk}")
        if response.status_code == 200:
            out.append(response.content.decode())
    client.force_login(user)
    pages = [reverse("register:residents") + f"?unit={d.district.pk}",
             reverse("register:households") + f"?unit={d.district.pk}",
             reverse("register:blind_spots", args=[d.district.pk])]
    pages += [reverse("register:household", args=[h.pk]) for h in Household.objects.all()]
    pages += [reverse("household_all", args=[h.pk]) for h in Household.objects.all()]
    for url in pages:
        response = client.get(url)
        if response.status_code == 200:
            out.append(response.content.decode())
    for q in ("王", "陈", d.resident_a.reveal_id_number(), "13812345678"):  # the header search (partial names:
        # the search box shows what was typed)
        response = client.post(reverse("search"), {"q": q})
        if response.status_code == 200:
            out.append(response.content.decode())
    for route in set(_export_routes()):
        url = _export_url(route, d)
        if url is None:
            continue
        response = client.get(url)
        if response.status_code == 200 and response.content[:2] == b"PK":
            out.append(_xlsx_text(response.content))
    return "\n".join(out)


def rebuilt(text: str, clear: dict[int, str]) -> set[str]:
    """The ID numbers an attacker rebuilds from ``text``: shown in full, or region + a birth date shown in any
    common form + the last four characters shown anywhere (the check digit confirms the guess)."""
    found = set()
    for number in clear.values():
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        forms = {f"{birth:%Y-%m-%d}", f"{birth:%Y%m%d}", f"{birth.year}年{birth.month}月{birth.day}日",
                 f"{birth:%Y/%m/%d}"}
        if number in text or (any(f in text for f in forms) and number[-4:] in text):
            found.add(number)
    return found


def candidates(birth_year: int, tail: str) -> int:
    """How many valid ID numbers agree with a region, a birth year and the last four characters."""
    n = 0
    day = dt.date(birth_year, 1, 1)
    while day.year == birth_year:
        first17 = f"{REGION}{day:%Y%m%d}{tail[:3]}"
        n += id_checksum(first17) == tail[3]
        day += dt.timedelta(days=1)
    return n


NO_REVEAL = ["department", "inspector", "volunteer"]


@pytest.mark.parametrize("username", NO_REVEAL)
def test_no_role_without_reveal_can_rebuild_an_id_number_from_anything_it_reads(client, d, username):
    assert Perm.REVEAL_PERSONAL not in PERMISSIONS[d.users[username].staff.role]
    clear = _clear_ids()
    text = read_everything(client, d, username)
    assert len(text) > 1000  # it did read the register
    assert rebuilt(text, clear) == set()


def test_the_rebuild_works_where_the_role_may_reveal_anyway(client, d):
    """The attack is real: from a grid worker's API list (full birth dates; they may reveal on purpose) it finds
    every ID number of the grid, which is why roles without reveal never get birth dates."""
    clear = _clear_ids()
    text = read_everything(client, d, "grid_a")
    grid_a = {n for pk, n in clear.items() if Resident.objects.get(pk=pk).path.startswith(d.grid_a.path)}
    assert rebuilt(text, clear) == grid_a


def test_a_masked_resident_agrees_with_dozens_of_id_numbers(client, d):
    items = api_call(client, bearer(d.users["inspector"]), "GET", f"{API_BASE}/residents?limit=200").json()["items"]
    assert items
    for item in items:
        assert item["birth_date"] is None and item["age"] is None
        assert re.fullmatch(r"\*{14}[0-9X]{4}", item["id_masked"]), item["id_masked"]
        assert candidates(item["birth_year"], item["id_masked"][-4:]) >= 10
        assert item["age_band"]


def test_roles_that_may_reveal_still_see_the_full_birth_date_and_the_region(client, d):
    item = next(i for i in api_call(client, bearer(d.users["grid_a"]), "GET", f"{API_BASE}/residents").json()["items"]
                if i["id"] == d.resident_a.pk)
    assert item["birth_date"] == "1975-03-09" and item["age"] > 40 and item["id_masked"].startswith(REGION)


# --- departments: counts, and pseudonyms instead of people ------------------------------------------------------

def test_a_department_sees_pseudonyms_not_names_addresses_ids_or_phones(client, d):
    auth = bearer(d.users["department"])
    first = api_call(client, auth, "GET", f"{API_BASE}/residents?limit=200").json()
    again = api_call(client, auth, "GET", f"{API_BASE}/residents?limit=200").json()
    assert first["total"] == Resident.objects.count()  # the counts are theirs
    text = str(first) + str(api_call(client, auth, "GET", f"{API_BASE}/households?limit=200").json())
    for r in Resident.objects.all():
        assert r.name not in text and r.household.address not in text
    assert all(i["id_masked"] == "" and i["phone_masked"] == "" and i["birth_year"] is None for i in first["items"])
    # SORMAS-style: a stable pseudonym, the same person the same code on every read, different people different
    names = [i["name"] for i in first["items"]]
    assert names == [i["name"] for i in again["items"]] and len(set(names)) == len(names)
    assert all(n.startswith("居民-") for n in names)


def test_a_department_cannot_find_out_where_a_named_person_lives(client, d):
    auth = bearer(d.users["department"])
    for q in (d.resident_a.name, d.resident_a.reveal_id_number(), "13812345678", d.resident_a.id_tail):
        assert api_call(client, auth, "GET", f"{API_BASE}/residents?q={q}").json()["total"] == 0
    client.force_login(d.users["department"])
    page = client.get(reverse("register:residents") + f"?unit={d.district.pk}&q={d.resident_a.name}")
    assert page.status_code == 200 and "共 0 人" in page.content.decode()  # (the search box shows what was typed)


def test_a_department_still_sees_the_counts_of_the_whole_district(client, d):
    counts = api_call(client, bearer(d.users["department"]), "GET", f"{API_BASE}/units/{d.district.pk}").json()
    commander = api_call(client, bearer(d.users["commander"]), "GET", f"{API_BASE}/units/{d.district.pk}").json()
    assert counts["counts"] == commander["counts"] and counts["counts"]["residents"] == Resident.objects.count()


def test_a_department_household_page_shows_no_name_or_address(client, d):
    client.force_login(d.users["department"])
    for name in ("register:household", "household_all"):
        page = client.get(reverse(name, args=[d.household_a.pk])).content.decode()
        assert d.household_a.address not in page and d.resident_a.name not in page and "居民-" in page, name


def test_nothing_a_department_reads_names_a_resident(client, d):
    text = read_everything(client, d, "department")
    assert [r.name for r in Resident.objects.all() if r.name in text] == []
    assert [h.address for h in Household.objects.all() if h.address in text] == []


# --- exports: masked by default --------------------------------------------------------------------------------

def test_the_register_export_is_masked_by_default(client, d):
    client.force_login(d.users["commander"])
    response = client.get(reverse("register:export", args=[d.district.pk]))
    text = _xlsx_text(response.content)
    for number in _clear_ids().values():
        assert number not in text and number[-4:] in text
    assert "13812345678" not in text and "138****5678" in text
    assert "1975-03-09" not in text
    entry = AuditEntry.objects.get(action="register.export")
    assert entry.changes["full"] is False and "reason" not in entry.changes


def test_a_full_export_needs_a_reason_and_a_confirmation_and_is_audited(client, d):
    client.force_login(d.users["commander"])
    url = reverse("register:export", args=[d.district.pk])
    no_reason = client.post(url, {"full": "1", "confirm": "1"})
    no_confirm = client.post(url, {"full": "1", "reason": "verify"})
    assert no_reason.status_code == no_confirm.status_code == 302  # back to the unit page with the message
    assert not AuditEntry.objects.filter(action="register.export").exists()
    response = client.post(url, {"full": "1", "confirm": "1", "reason": "", "reason_text": "移交区外协查"})
    assert response.status_code == 200
    assert d.resident_a.reveal_id_number() in _xlsx_text(response.content)
    entry = AuditEntry.objects.get(action="register.export")
    assert entry.changes["full"] is True and entry.changes["reason"] == "移交区外协查"
    assert entry.actor == d.users["commander"]


def test_a_role_that_may_export_but_not_reveal_gets_no_full_export(client, d, settings):
    from bihuan.core import roles

    # a role with export but without reveal (no such role ships; the rule must hold if one is made)
    original = roles.PERMISSIONS[Role.INSPECTOR]
    roles.PERMISSIONS[Role.INSPECTOR] = original | {Perm.EXPORT_REGISTER}
    try:
        client.force_login(d.users["inspector"])
        url = reverse("register:export", args=[d.district.pk])
        assert client.post(url, {"full": "1", "confirm": "1", "reason": "verify"}).status_code == 403
        masked = client.get(url)
        assert masked.status_code == 200 and d.resident_a.reveal_id_number() not in _xlsx_text(masked.content)
    finally:
        roles.PERMISSIONS[Role.INSPECTOR] = original


def test_the_handoff_record_is_masked_unless_asked_for_with_a_reason(client, d):
    client.force_login(d.users["commander"])
    url = reverse("pushes:handoff") + f"?unit={d.district.pk}&date=2022-03-04"
    assert client.get(url).status_code == 200
    assert client.post(url, {"full": "1", "reason": "transfer"}).status_code == 302  # no confirmation
    assert client.post(url, {"full": "1", "reason": "transfer", "confirm": "1"}).status_code == 200
    entries = list(AuditEntry.objects.filter(action="push.handoff.export").order_by("id"))
    assert [e.changes["revealed"] for e in entries] == [False, True]
    assert entries[1].changes["reason"].startswith("transfer")


# --- bulk reads: one audit row per request ---------------------------------------------------------------------

def test_every_api_list_of_people_writes_one_audit_row_with_filter_and_count(client, d):
    auth = bearer(d.users["township_a"])
    before = AuditEntry.objects.count()
    response = api_call(client, auth, "GET", f"{API_BASE}/residents?limit=2&offset=0&q=陈")
    assert response.status_code == 200
    rows = list(AuditEntry.objects.filter(action="read.bulk"))
    assert AuditEntry.objects.count() == before + 1 and len(rows) == 1
    assert rows[0].actor == d.users["township_a"] and rows[0].target_id == "api.residents"
    assert rows[0].changes == {"list": "api.residents", "count": 1,
                               "filters": {"unit": d.township_a.pk, "q": "陈", "offset": 0, "limit": 2}}
    api_call(client, auth, "GET", f"{API_BASE}/households")
    assert AuditEntry.objects.filter(action="read.bulk", target_id="api.households").count() == 1


def test_every_list_page_of_people_writes_one_audit_row(client, d):
    client.force_login(d.users["community_a"])
    client.get(reverse("register:residents") + f"?unit={d.community_a.pk}")
    client.get(reverse("register:households") + f"?unit={d.community_a.pk}", **HX)
    lists = sorted(AuditEntry.objects.filter(action="read.bulk").values_list("target_id", flat=True))
    assert lists == ["register.households", "register.residents"]
    row = AuditEntry.objects.get(target_id="register.residents")
    assert row.changes["count"] == Resident.objects.filter(path__startswith=d.community_a.path).count()


def test_a_bulk_read_costs_one_insert(client, d, django_assert_max_num_queries):
    from bihuan.core import audit

    with django_assert_max_num_queries(1):
        audit.bulk_read(actor=d.users["grid_a"], what="x.list", filters={"q": ""}, count=3)


# --- reveal: a reason, and a limit per user ----------------------------------------------------------------

def test_a_reveal_without_a_reason_is_refused(client, d):
    auth = bearer(d.users["grid_a"])
    url = f"{API_BASE}/residents/{d.resident_a.pk}/reveal"
    assert api_call(client, auth, "POST", url, {"reason": ""}).status_code == 422
    refused = api_call(client, auth, "POST", url, {"reason": "   "})  # blank: the schema's pattern \S
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "body", "reason"]
    client.force_login(d.users["grid_a"])
    page = client.post(reverse("register:reveal", args=[d.resident_a.pk]), {"reason": "", "reason_text": " "}, **HX)
    assert "reveal-refused" in page.content.decode()
    assert d.resident_a.reveal_id_number() not in page.content.decode()
    assert not AuditEntry.objects.filter(action="resident.reveal").exists()


def test_a_reveal_takes_a_listed_reason_or_free_text(client, d):
    client.force_login(d.users["grid_a"])
    url = reverse("register:reveal", args=[d.resident_a.pk])
    assert d.resident_a.reveal_id_number() in client.post(url, {"reason": "call"}, **HX).content.decode()
    client.post(url, {"reason": "", "reason_text": "协查函第12号"}, **HX)
    reasons = list(AuditEntry.objects.filter(action="resident.reveal").order_by("id")
                   .values_list("changes__reason", flat=True))
    assert reasons == ["call: 电话联系本人", "协查函第12号"]


def test_reveals_are_throttled_per_user_with_a_clear_message(client, d, settings, clock):
    settings.REVEAL_LIMIT, settings.REVEAL_WINDOW_MINUTES = 3, 10
    auth = bearer(d.users["grid_a"])
    url = f"{API_BASE}/residents/{d.resident_a.pk}/reveal"
    for _ in range(3):
        assert api_call(client, auth, "POST", url, {"reason": "verify"}).status_code == 200
    refused = api_call(client, auth, "POST", url, {"reason": "verify"})
    assert refused.status_code == 429
    assert "10 分钟内最多查看 3 次" in refused.json()["detail"] and "分钟后再试" in refused.json()["detail"]
    with translation.override("en"):
        with pytest.raises(Throttled, match="At most 3 reveals in 10 minutes: try again in 10 minutes"):
            reveal.check(d.users["grid_a"])
    assert AuditEntry.objects.filter(action="resident.reveal").count() == 3
    # another user is not held back; nor is this one once the window has passed
    other = bearer(d.users["community_a"])
    assert api_call(client, other, "POST", url, {"reason": "verify"}).status_code == 200
    clock.advance(minutes=11)
    assert api_call(client, auth, "POST", url, {"reason": "verify"}).status_code == 200


def test_the_web_reveal_shows_the_throttle_message(client, d, settings):
    settings.REVEAL_LIMIT = 1
    client.force_login(d.users["grid_a"])
    url = reverse("register:reveal", args=[d.resident_a.pk])
    client.post(url, {"reason": "verify"}, **HX)
    page = client.post(url, {"reason": "verify"}, **HX).content.decode()
    assert "reveal-refused" in page and "1 次" in page and d.resident_a.reveal_id_number() not in page


def test_every_combination_of_the_masked_fields_keeps_many_candidates():
    """Over a spread of birth years and tails, the year and the last four never narrow an ID to a handful."""
    fewest = min(candidates(year, f"{seq:03d}{check}") for year, seq, check in
                 itertools.product((1941, 1975, 2000, 2020), (1, 77, 999), "0123456789X"))
    assert fewest >= 15


# --- no existence oracles in the register import -----------------------------------------------------------------

def test_an_import_says_the_same_of_a_code_outside_your_part_and_one_that_does_not_exist(d, tmp_path):
    from bihuan.register.workbook import HOUSEHOLD_COLUMNS, RESIDENT_COLUMNS, import_workbook
    from bihuan.register.workbook.importer import ID_NOT_HERE

    from .helpers import write

    secret_id = d.resident_b.reveal_id_number()  # registered in branch B, outside township A
    path = write(tmp_path / "probe.xlsx", {
        "户": (HOUSEHOLD_COLUMNS, [("HNEW1", d.grid_b.code, "城镇", "", "", "", "", "某地1"),
                                  ("HNEW2", "NOSUCHUNIT", "城镇", "", "", "", "", "某地2")]),
        "居民": (RESIDENT_COLUMNS, [(d.household_b.code, "甲", "", "", "男", "1980-01-01"),
                                   ("NOSUCHHOUSE", "乙", "", "", "男", "1980-01-01"),
                                   (d.household_a.code, "丙", secret_id)]),
    })
    errors = {(e.sheet, e.row): e.reason for e in import_workbook(path, acting_user=d.users["township_a"]).errors}
    assert errors[("户", 2)].replace(d.grid_b.code, "X") == errors[("户", 3)].replace("NOSUCHUNIT", "X")
    assert errors[("居民", 2)].replace(d.household_b.code, "X") == errors[("居民", 3)].replace("NOSUCHHOUSE", "X")
    assert "不存在或不在您的管辖范围内" in errors[("户", 2)]
    assert errors[("居民", 4)] == ID_NOT_HERE and d.household_b.code not in ID_NOT_HERE


# --- a full phone or ID number never reaches the address bar or the access log ------------------------------

def test_the_access_log_format_leaves_out_query_strings_and_referrers():
    import datetime as _dt
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from bihuan import gunicorn_conf

    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    logger = Logger(cfg)
    secret = "110101199003070014"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/api/v1/residents?q={secret}", "PATH_INFO": "/api/v1/residents",
               "QUERY_STRING": f"q={secret}", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_REFERER": f"https://bihuan.example/register/residents/?q={secret}", "HTTP_USER_AGENT": "test"}
    req = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])], method="GET", uri=environ["RAW_URI"],
                          path="/api/v1/residents", query=f"q={secret}", version=(1, 1))
    resp = SimpleNamespace(status="200 OK", response_length=10, sent=10, headers=[])
    line = gunicorn_conf.access_log_format % logger.atoms(resp, req, environ, _dt.timedelta(milliseconds=5))
    assert "/api/v1/residents" in line and secret not in line and "q=" not in line


def test_the_register_search_sends_the_query_by_post_and_finds_a_full_id_number(client, d):
    client.force_login(d.users["grid_a"])
    url = reverse("register:residents")
    page = client.get(url + f"?unit={d.grid_a.pk}").content.decode()
    assert re.search(r'<form class="search" method="post"[^>]*hx-post=', page)
    found = client.post(url, {"unit": d.grid_a.pk, "q": d.resident_a.reveal_id_number()}, **HX).content.decode()
    assert d.resident_a.name in found and d.resident_a2.name not in found
    found = client.post(reverse("register:households"), {"unit": d.grid_a.pk, "q": "13812345678"}, **HX)
    assert d.household_a.address in found.content.decode()
