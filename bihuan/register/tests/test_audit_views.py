"""The audit-log viewer: who may read which rows (insider / outsider at every level), the filters, a fixed
number of queries per page, and an xlsx export that is itself audited."""

import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core import audit
from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS, Perm, Role
from bihuan.register.models import UnitKind
from bihuan.testing import create_staff, create_unit, url_names


@pytest.fixture
def log(district):
    """One row by each staff member of the base district, and one without an actor unit (the worker)."""
    d = district
    AuditEntry.objects.all().delete()
    for name, user in d.users.items():
        audit.record(actor=user, action=f"test.{name}", target_type="register.household", target_id=7,
                     changes={"by": name})
    audit.record(actor=None, action="test.system", target_type="loops.loop", target_id=1)
    return d


def actions_seen(client, user, query=""):
    client.force_login(user)
    response = client.get(reverse("audit:list") + query)
    assert response.status_code == 200, response.status_code
    return {e.action for e in response.context["page"].object_list}


def test_every_audit_page_is_tested_here():
    assert {n for n in url_names() if n.startswith("audit:")} == {"audit:list", "audit:export"}


@pytest.mark.parametrize("route", ["audit:list", "audit:export"])
def test_only_holders_of_the_audit_permission_get_in(client, log, route):
    for name in log.insiders + log.outsiders:
        client.force_login(log.users[name])
        expected = 200 if Perm.VIEW_AUDIT in PERMISSIONS[log.users[name].staff.role] else 403
        assert client.get(reverse(route)).status_code == expected, name


def test_a_viewer_sees_the_rows_of_actors_in_their_subtree_only(client, log):
    d = log
    assert actions_seen(client, d.users["community_a"]) == {"test.community_a", "test.property_a", "test.grid_a"}
    assert actions_seen(client, d.users["township_b"]) == {"test.township_b", "test.village_b",
                                                          "test.group_head_b", "test.rep_b"}
    everything = {f"test.{n}" for n in d.users} | {"test.system"}
    assert actions_seen(client, d.users["commander"]) == everything  # the district sees actor-less rows too


def test_an_inspector_finally_has_something_to_use(client, log):
    d = log
    inspection = create_unit(d.district, "区督查组", UnitKind.COMMAND_OFFICE)
    inspector = create_staff(inspection, "inspector", Role.INSPECTOR).user
    audit.record(actor=inspector, action="test.inspector")
    client.force_login(inspector)
    assert client.get(reverse("home")).content.decode().count('data-testid="nav-audit"') == 1
    assert actions_seen(client, inspector) == {"test.inspector"}


def test_filters_by_actor_unit_action_target_and_date(client, log):
    d = log
    commander = d.users["commander"]
    assert actions_seen(client, commander, "?actor=grid_a") == {"test.grid_a"}
    assert actions_seen(client, commander, f"?unit={d.community_a.pk}") == {
        "test.community_a", "test.property_a", "test.grid_a"}
    assert actions_seen(client, commander, "?action=test.village") == {"test.village_b"}
    assert actions_seen(client, commander, "?target=loops.loop:1") == {"test.system"}
    assert actions_seen(client, commander, "?target=register.household:8") == set()
    today = timezone.localdate()
    assert len(actions_seen(client, commander, f"?date_from={today}&date_to={today}")) == 12
    yesterday = today - dt.timedelta(days=1)
    assert actions_seen(client, commander, f"?date_to={yesterday}") == set()


def test_a_unit_outside_the_subtree_is_not_found_and_bad_dates_are_refused(client, log):
    d = log
    client.force_login(d.users["community_a"])
    assert client.get(reverse("audit:list") + f"?unit={d.village_b.pk}").status_code == 404
    response = client.get(reverse("audit:list") + "?date_from=2026-13-01")
    assert response.status_code == 400 and "date_from" in response.content.decode()


def test_a_page_runs_the_same_number_of_queries_for_1_row_and_for_50(client, log):
    d = log
    commander = d.users["commander"]
    client.force_login(commander)
    client.get(reverse("audit:list"))
    counts = {}
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for query, rows in (("?action=test.grid_a", 1), ("", 50)):
        if rows == 50:
            for n in range(60):
                audit.record(actor=d.users[list(d.users)[n % 11]], action="test.more", target_type="x",
                             target_id=n)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("audit:list") + query)
        assert len(response.context["page"].object_list) == rows
        counts[rows] = len(ctx.captured_queries)
    assert counts[1] == counts[50] <= 8, counts


def test_the_export_is_an_xlsx_of_the_filtered_rows_and_is_itself_audited(client, log):
    d = log
    audit.record(actor=d.users["grid_a"], action="=HYPERLINK(\"x\")", target_type="t")
    client.force_login(d.users["community_a"])
    response = client.get(reverse("audit:export") + "?actor=grid_a")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"] and ".xlsx" in response["Content-Disposition"]
    ws = load_workbook(io.BytesIO(response.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:5] == ("时间", "操作人", "账号", "单位", "操作")
    assert sorted(r[4] for r in rows[1:]) == ["'=HYPERLINK(\"x\")", "test.grid_a"]  # text, never a formula
    assert {r[3] for r in rows[1:]} == {"锦悦小区第1网格"}
    entry = AuditEntry.objects.get(action="audit.export")
    assert entry.actor == d.users["community_a"] and entry.changes == {"filters": {"actor": "grid_a"}, "rows": 2}
