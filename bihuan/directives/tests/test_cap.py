"""CAP 1.2: every message a directive makes (Alert, Update, Cancel, Exercise) and every sign-off (Ack) is
valid against the OASIS schema, and the references chain the messages together."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bihuan.directives import cap
from bihuan.directives.actions import (
    DirectiveError,
    do_cancel_directive,
    do_close_directive,
    do_issue_directive,
    do_sign_receipt,
    do_update_directive,
)
from bihuan.directives.models import RECEIPT, Directive, Urgency
from bihuan.loops.models import Loop
from bihuan.testing import create_staff, create_unit

from .helpers import NS, XSD, text, valid


def issue(d, user: str = "commander", **kw) -> Directive:
    kw.setdefault("title", "关于开展全员核酸检测的通知")
    kw.setdefault("body", "请各单位于今日 18 时前组织辖区居民完成核酸检测。")
    directive = do_issue_directive(acting_user=d.users[user], **kw)
    return Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)


def receipt(directive: Directive, unit) -> Loop:
    return Loop.objects.select_related("owner_unit").get(kind=RECEIPT, subject_id=directive.pk, owner_unit=unit)


def fresh(directive: Directive) -> Directive:
    return Directive.objects.select_related("issuer_unit", "scope_unit").get(pk=directive.pk)


SENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


# ------------------------------------------------------------------------------------------------- Alert


def test_an_issued_directive_is_a_valid_cap_alert(district, schema):
    d = issue(district, urgency=Urgency.EXTRA_URGENT)
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:identifier") == f"urn:bihuan:141002:directive:{d.pk}:v1"
    assert text(root, "cap:sender") == "bihuan:141002"
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:scope") == "Public"
    assert root.find("cap:references", NS) is None
    sent = text(root, "cap:sent")
    assert SENT.match(sent) and sent.endswith("+08:00")  # Asia/Shanghai, no fractions
    assert datetime.fromisoformat(sent) == d.issued_at.replace(microsecond=0)
    infos = root.findall("cap:info", NS)
    assert len(infos) == 1
    info = infos[0]
    assert text(info, "cap:language") == "zh-CN"
    assert text(info, "cap:category") == "Health"
    assert text(info, "cap:event") == "疫情防控指令"
    assert (text(info, "cap:urgency"), text(info, "cap:severity"), text(info, "cap:certainty")) == (
        "Immediate", "Severe", "Observed")
    assert text(info, "cap:headline") == d.title
    assert text(info, "cap:description") == d.body
    assert text(info, "cap:senderName") == "尧都区"
    assert text(info, "cap:area/cap:areaDesc") == "尧都区"
    assert text(info, "cap:area/cap:geocode/cap:valueName") == "GB/T 2260"
    assert text(info, "cap:area/cap:geocode/cap:value") == "141002"


@pytest.mark.parametrize(("urgency", "expected"), [
    (Urgency.EXTRA_URGENT, ("Immediate", "Severe", "Observed")),
    (Urgency.URGENT, ("Expected", "Moderate", "Likely")),
    (Urgency.NORMAL, ("Future", "Minor", "Possible")),
])
def test_urgency_maps_to_cap_urgency_severity_and_certainty(district, schema, urgency, expected):
    root = valid(schema, cap.alert_xml(issue(district, urgency=urgency)))
    info = root.find("cap:info", NS)
    assert (text(info, "cap:urgency"), text(info, "cap:severity"), text(info, "cap:certainty")) == expected


def test_every_urgency_has_a_mapping():
    assert set(cap.URGENCY_MAP) == set(Urgency.values)


def test_a_directive_from_the_command_office_to_every_township_is_district_wide(district, schema):
    d = issue(district, user="office")
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:sender") == f"bihuan:{district.office.code}"
    assert text(root, "cap:identifier") == f"urn:bihuan:141002:directive:{d.pk}:v1"  # the district's code
    assert text(root, "cap:info/cap:senderName") == "区疫情防控指挥部办公室"
    assert text(root, "cap:info/cap:area/cap:geocode/cap:value") == "141002"


def test_a_directive_to_part_of_the_district_names_the_part_and_has_no_district_geocode(district, schema):
    d = issue(district, user="township_a")
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "解放路街道"
    assert root.find("cap:info/cap:area/cap:geocode", NS) is None
    d = issue(district, target_unit_ids=[district.compound_a.pk, district.group_b.pk])
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "锦悦小区、东羊一组"
    assert root.find("cap:info/cap:area/cap:geocode", NS) is None


def test_the_area_description_is_bounded(district, schema):
    extra = [create_unit(district.community_a, f"扩展小区{i:02d}", "compound") for i in range(cap.AREA_NAMES + 5)]
    d = issue(district, target_kinds=["compound", "villager_group"])
    desc = text(valid(schema, cap.alert_xml(d)), "cap:info/cap:area/cap:areaDesc")
    assert desc.endswith(f" 等 {len(extra) + 2} 个单位")
    assert desc.count("、") == cap.AREA_NAMES - 1


def test_a_drill_is_an_exercise(district, schema):
    d = issue(district, is_exercise=True)
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:status") == "Exercise"
    loop = receipt(d, district.grid_a)
    do_sign_receipt(loop_id=loop.pk, acting_user=district.users["grid_a"])
    assert text(valid(schema, cap.ack_xml(receipt(d, district.grid_a))), "cap:status") == "Exercise"


def test_the_same_message_is_the_same_bytes(district, schema):
    d = issue(district)
    assert cap.alert_xml(d) == cap.alert_xml(fresh(d))


def test_the_sender_prefix_is_a_setting_and_unsafe_characters_are_replaced(district, schema, settings):
    settings.CAP_SENDER_PREFIX = "cn.gov.yaodu."
    odd = create_unit(district.township_a, "奇怪 编码,社区", "community", code="A B,C<&D")
    create_staff(odd, "odd_staff", "community_staff")
    district.users["odd_staff"] = odd.staff.get().user
    d = issue(district, user="odd_staff")
    root = valid(schema, cap.alert_xml(d))
    assert text(root, "cap:sender") == "cn.gov.yaodu.A-B-C-D"


# ------------------------------------------------------------------------------------ Update and Cancel


def _backdate_versions(d: Directive) -> None:
    """Move the versions a few seconds apart so each has its own ``sent``."""
    from bihuan.core.models import AuditEntry

    Directive.objects.filter(pk=d.pk).update(issued_at=d.issued_at - timedelta(minutes=10))
    for i, entry in enumerate(AuditEntry.objects.filter(action="directive.update", target_id=str(d.pk))
                              .order_by("id")):
        AuditEntry.objects.filter(pk=entry.pk).update(created_at=d.issued_at - timedelta(minutes=5 - i))


def test_updates_reference_the_alert_and_every_earlier_update(district, schema):
    d = issue(district, urgency=Urgency.NORMAL)
    alert = valid(schema, cap.alert_xml(d))
    do_update_directive(directive=d, acting_user=district.users["commander"], body="时间改为 20 时前。")
    v2 = valid(schema, cap.alert_xml(fresh(d), "Update"))
    do_update_directive(directive=fresh(d), acting_user=district.users["commander"], urgency=Urgency.URGENT)
    d = fresh(d)
    v3 = valid(schema, cap.alert_xml(d, "Update"))

    def ref(root):
        return ",".join(text(root, f"cap:{f}") for f in ("sender", "identifier", "sent"))

    assert text(v2, "cap:identifier").endswith(":v2") and text(v2, "cap:msgType") == "Update"
    assert text(v2, "cap:references") == ref(alert)
    assert text(v3, "cap:identifier") == f"urn:bihuan:141002:directive:{d.pk}:v3"
    assert text(v3, "cap:references") == f"{ref(alert)} {ref(v2)}"
    assert text(v3, "cap:info/cap:urgency") == "Expected"
    assert text(v3, "cap:info/cap:description") == "时间改为 20 时前。"
    # The Alert of an updated directive no longer exists as such; its current message is the Update.
    with pytest.raises(DirectiveError, match="^type:"):
        cap.alert_xml(d, "Alert")
    assert cap.default_msg_type(d) == "Update"


def test_the_sent_time_of_each_version_is_stable(district, schema):
    d = issue(district)
    do_update_directive(directive=d, acting_user=district.users["commander"], title="更新一")
    do_update_directive(directive=fresh(d), acting_user=district.users["commander"], title="更新二")
    _backdate_versions(fresh(d))
    d = fresh(d)
    times = cap.version_times(d)
    assert times[2] < times[3] and times[1] < times[2]
    v3 = valid(schema, cap.alert_xml(d, "Update"))
    refs = text(v3, "cap:references").split(" ")
    assert [r.split(",")[2] for r in refs] == [cap.cap_time(times[1]), cap.cap_time(times[2])]
    assert text(v3, "cap:sent") == cap.cap_time(times[3])


def test_an_update_of_a_directive_never_updated_does_not_exist(district):
    with pytest.raises(DirectiveError, match="^type:"):
        cap.alert_xml(issue(district), "Update")


def test_a_cancel_references_every_earlier_message_and_gives_the_reason(district, schema):
    d = issue(district, is_exercise=True)
    alert = valid(schema, cap.alert_xml(d))
    with pytest.raises(DirectiveError, match="^type:"):
        cap.alert_xml(d, "Cancel")
    do_update_directive(directive=d, acting_user=district.users["commander"], title="改")
    v2 = valid(schema, cap.alert_xml(fresh(d), "Update"))
    do_cancel_directive(directive=fresh(d), reason="演练结束", acting_user=district.users["commander"])
    d = fresh(d)
    root = valid(schema, cap.alert_xml(d, "Cancel"))
    assert text(root, "cap:msgType") == "Cancel"
    assert text(root, "cap:status") == "Exercise"
    assert text(root, "cap:identifier") == f"urn:bihuan:141002:directive:{d.pk}:cancel"
    assert text(root, "cap:note") == "撤销：演练结束"
    assert datetime.fromisoformat(text(root, "cap:sent")) == d.closed_at.replace(microsecond=0)
    refs = text(root, "cap:references").split(" ")
    assert refs == [",".join(text(m, f"cap:{f}") for f in ("sender", "identifier", "sent")) for m in (alert, v2)]
    assert cap.default_msg_type(d) == "Cancel"
    # The earlier messages can still be exported.
    valid(schema, cap.alert_xml(d, "Update"))


def test_a_closed_directive_can_be_withdrawn_with_a_cancel(district, schema):
    d = issue(district)
    do_close_directive(directive=d, acting_user=district.users["commander"], reason="提前结束")
    root = valid(schema, cap.alert_xml(fresh(d), "Cancel"))
    assert text(root, "cap:note") == "销号：提前结束"
    assert text(root, "cap:references").split(",")[1] == f"urn:bihuan:141002:directive:{d.pk}:v1"


def test_an_unknown_message_type_is_refused(district):
    with pytest.raises(DirectiveError, match="^type:"):
        cap.alert_xml(issue(district), "Error")


# ---------------------------------------------------------------------------------------------------- Ack


def test_a_units_sign_off_is_an_ack_from_that_unit_referencing_the_alert(district, schema):
    d = issue(district)
    alert = valid(schema, cap.alert_xml(d))
    loop = receipt(d, district.community_a)
    with pytest.raises(DirectiveError, match="^receipt:"):
        cap.ack_xml(loop)
    do_sign_receipt(loop_id=loop.pk, acting_user=district.users["community_a"])
    loop = receipt(d, district.community_a)
    root = valid(schema, cap.ack_xml(loop))
    assert text(root, "cap:msgType") == "Ack"
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:sender") == f"bihuan:{district.community_a.code}"
    assert text(root, "cap:identifier") == f"urn:bihuan:141002:directive:{d.pk}:ack:{district.community_a.code}"
    assert datetime.fromisoformat(text(root, "cap:sent")) == loop.acknowledged_at.replace(microsecond=0)
    assert text(root, "cap:references") == ",".join(
        text(alert, f"cap:{f}") for f in ("sender", "identifier", "sent"))
    assert root.find("cap:info", NS) is None


def test_an_ack_references_the_version_that_was_current_when_the_unit_signed(district, schema):
    d = issue(district)
    early = receipt(d, district.township_a)
    do_sign_receipt(loop_id=early.pk, acting_user=district.users["township_a"])
    Loop.objects.filter(pk=early.pk).update(acknowledged_at=timezone.now() - timedelta(seconds=1))
    Directive.objects.filter(pk=d.pk).update(issued_at=timezone.now() - timedelta(minutes=1))
    do_update_directive(directive=fresh(d), acting_user=district.users["commander"], body="新的要求")
    late = receipt(d, district.township_b)
    do_sign_receipt(loop_id=late.pk, acting_user=district.users["township_b"])
    first = text(valid(schema, cap.ack_xml(receipt(d, district.township_a))), "cap:references")
    second = text(valid(schema, cap.ack_xml(receipt(d, district.township_b))), "cap:references")
    assert first.split(",")[1].endswith(":v1")
    assert second.split(",")[1].endswith(":v2")


def test_cap_time_has_an_offset_and_no_fractions(settings):
    moment = datetime(2022, 11, 2, 0, 30, 5, 123456, tzinfo=UTC)
    assert cap.cap_time(moment) == "2022-11-02T08:30:05+08:00"
    settings.TIME_ZONE = "UTC"
    assert cap.cap_time(moment) == "2022-11-02T00:30:05-00:00"  # CAP writes UTC as -00:00


def test_the_cap_schema_travels_with_the_project():
    """The schema is a file of the project (OASIS CAP 1.2, its source noted beside it), not of this machine."""
    assert XSD.is_file()
    assert XSD.is_relative_to(Path(cap.__file__).resolve().parent)
    assert 'targetNamespace="urn:oasis:names:tc:emergency:cap:1.2"' in XSD.read_text(encoding="utf-8")
    assert "OASIS CAP 1.2" in (XSD.parent / "README.md").read_text(encoding="utf-8")
