"""The drill readiness report and the CAP messages (Alert / Update / Cancel, each unit's Ack) are reachable from
the directive page, as pages and audited downloads, each within the user's part of the district."""

from __future__ import annotations

import io

from django.urls import reverse
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.directives.actions import (
    do_cancel_directive,
    do_issue_directive,
    do_mark_households,
    do_sign_receipt,
    do_update_directive,
)
from bihuan.directives.models import RECEIPT
from bihuan.loops.models import Loop

from .helpers import text, valid


def drill(d):
    return do_issue_directive(acting_user=d.users["commander"], title="应急演练", body="请各单位签收并入户",
                              is_exercise=True)


def receipt(directive, unit):
    return Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)


def test_the_directive_page_links_the_drill_report_and_the_cap_messages(client, district):
    d = district
    directive = drill(d)
    client.force_login(d.users["commander"])
    url = reverse("directives:detail", args=[directive.pk])
    page = client.get(url).content.decode()
    assert reverse("directives:readiness", args=[directive.pk]) in page and "演练评估报告" in page
    assert reverse("directives:readiness_xlsx", args=[directive.pk]) in page
    assert f'{reverse("directives:cap", args=[directive.pk])}?type=Alert' in page
    assert "?type=Update" not in page and "?type=Cancel" not in page
    do_sign_receipt(loop_id=receipt(directive, d.office).pk, acting_user=d.users["office"])
    do_update_directive(directive=directive, acting_user=d.users["commander"], body="改为明日")
    page = client.get(url).content.decode()
    assert "?type=Update" in page and "?type=Alert" not in page  # its current message is an Update
    assert reverse("directives:ack", args=[receipt(directive, d.office).pk]) in page  # the signed child's Ack
    do_cancel_directive(directive=directive, reason="结束", acting_user=d.users["commander"])
    assert "?type=Cancel" in client.get(url).content.decode()


def test_each_cap_message_downloads_valid_and_audited(client, district, schema):
    d = district
    directive = drill(d)
    client.force_login(d.users["grid_a"])
    url = reverse("directives:cap", args=[directive.pk])
    assert text(valid(schema, client.get(url, {"type": "Alert"}).content), "cap:msgType") == "Alert"
    do_update_directive(directive=directive, acting_user=d.users["commander"], body="改为明日")
    do_cancel_directive(directive=directive, reason="结束", acting_user=d.users["commander"])
    for msg_type in ("Update", "Cancel"):
        response = client.get(reverse("directives:cap", args=[directive.pk]), {"type": msg_type})
        assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
        assert response["Content-Disposition"].startswith("attachment;")
        root = valid(schema, response.content)
        assert text(root, "cap:msgType") == msg_type and text(root, "cap:status") == "Exercise"
    assert AuditEntry.objects.filter(action="directive.export_cap", actor=d.users["grid_a"]).count() == 3
    assert client.get(reverse("directives:cap", args=[directive.pk]), {"type": "Bogus"}).status_code == 404


def test_a_message_that_does_not_exist_yet_is_a_404(client, district):
    d = district
    directive = drill(d)
    client.force_login(d.users["commander"])
    assert client.get(reverse("directives:cap", args=[directive.pk]), {"type": "Update"}).status_code == 404
    assert client.get(reverse("directives:ack", args=[receipt(directive, d.grid_a).pk])).status_code == 404


def test_a_units_ack_downloads_once_it_signed(client, district, schema):
    d = district
    directive = drill(d)
    loop = do_sign_receipt(loop_id=receipt(directive, d.grid_a).pk, acting_user=d.users["grid_a"])
    client.force_login(d.users["township_a"])
    response = client.get(reverse("directives:ack", args=[loop.pk]))
    assert response.status_code == 200
    root = valid(schema, response.content)
    assert text(root, "cap:msgType") == "Ack"
    client.force_login(d.users["township_b"])
    assert client.get(reverse("directives:ack", args=[loop.pk])).status_code == 404


def test_the_readiness_page_and_workbook_show_only_the_users_part(client, district):
    d = district
    directive = drill(d)
    do_sign_receipt(loop_id=receipt(directive, d.grid_a).pk, acting_user=d.users["grid_a"])
    do_mark_households(directive=directive, household_ids=[d.household_a.pk], status="reached", method="phone",
                       acting_user=d.users["grid_a"])
    client.force_login(d.users["township_a"])
    page = client.get(reverse("directives:readiness", args=[directive.pk])).content.decode()
    assert f'data-testid="readiness-{d.grid_a.pk}"' in page and d.grid_a.name in page
    assert d.grid_b.name not in page and d.township_b.name not in page
    response = client.get(reverse("directives:readiness_xlsx", args=[directive.pk]))
    assert response.status_code == 200
    names = [r[1] for r in load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True)]
    assert d.grid_a.name in names and d.grid_b.name not in names
    assert AuditEntry.objects.filter(action="directive.export_readiness", actor=d.users["township_a"]).count() == 1


def test_the_feedback_export_is_audited_once(client, district):
    d = district
    directive = drill(d)
    client.force_login(d.users["commander"])
    assert client.get(reverse("directives:export", args=[directive.pk])).status_code == 200
    assert AuditEntry.objects.filter(action="directive.export_feedback").count() == 1
