"""Directives as CAP 1.2 messages (OASIS Common Alerting Protocol), and receipts as CAP ``Ack``.

Built with ``xml.etree.ElementTree`` (no extra dependency); the tests validate every variant against the
official schema, which travels with the project (``bihuan/directives/standards/cap-v1.2.xsd``, OASIS CAP 1.2;
``SCHEMA`` below).

Messages and their identifiers (unique per sender, stable, never containing spaces, commas, ``<`` or ``&``):

============  ==========================================================  ======================
msgType       identifier                                                  sent
============  ==========================================================  ======================
``Alert``     ``urn:bihuan:<district code>:directive:<id>:v1``            when it was issued
``Update``    ``urn:bihuan:<district code>:directive:<id>:v<version>``    when that version was made
``Cancel``    ``urn:bihuan:<district code>:directive:<id>:cancel``        when it was cancelled / closed
``Ack``       ``urn:bihuan:<district code>:directive:<id>:ack:<unit>``    when the unit signed
============  ==========================================================  ======================

``references`` (``sender,identifier,sent`` separated by spaces) of an Update lists the Alert and every
earlier Update; of a Cancel, all of them; of an Ack, the version of the directive that was current when
the unit signed. The time a version was made is read from its audit row (``directive.update``), so the
same message always gets the same ``sent``.

``sender`` is ``CAP_SENDER_PREFIX`` (setting, default ``bihuan:``) followed by the code of the issuing unit
(for an Ack: of the unit that signed), e.g. ``bihuan:141002`` for the district.

Urgency mapping (指令紧急程度 → CAP urgency / severity / certainty):

=========  ===========  ========  =========
Bihuan     urgency      severity  certainty
=========  ===========  ========  =========
特急        Immediate    Severe    Observed
紧急        Expected     Moderate  Likely
一般        Future       Minor     Possible
=========  ===========  ========  =========

A drill (``is_exercise``) has ``status`` ``Exercise``, everything else ``Actual``. ``scope`` is ``Public``.
The one ``<info>`` is in ``zh-CN``, category ``Health``; its ``<area>`` names the target units (at most
``AREA_NAMES`` of them, then "等 N 个单位") and, when the directive goes to the whole district, carries the
district's administrative division code as a geocode (``valueName`` ``GB/T 2260``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from bihuan.core.models import AuditEntry
from bihuan.loops.models import Loop
from bihuan.register.models import SEGMENT, Unit, UnitKind

from .actions import DirectiveError
from .fanout import target_paths
from .models import RECEIPT, Directive, DirectiveStatus, Urgency

NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA = Path(__file__).resolve().parent / "standards" / "cap-v1.2.xsd"  # the OASIS CAP 1.2 schema
MSG_TYPES = ("Alert", "Update", "Cancel")
EVENT = "疫情防控指令"
GEOCODE_NAME = "GB/T 2260"
AREA_NAMES = 20  # target units named in areaDesc at most

URGENCY_MAP: dict[str, tuple[str, str, str]] = {
    Urgency.EXTRA_URGENT: ("Immediate", "Severe", "Observed"),
    Urgency.URGENT: ("Expected", "Moderate", "Likely"),
    Urgency.NORMAL: ("Future", "Minor", "Possible"),
}

_UNSAFE = re.compile(r"[\s,<&]+")


def _token(value: str) -> str:
    """CAP forbids spaces, commas, ``<`` and ``&`` in identifiers and senders."""
    return _UNSAFE.sub("-", value.strip()) or "-"


def cap_time(value: datetime) -> str:
    """ISO 8601 in local time with its offset and without fractions (``2022-11-02T08:30:00+08:00``).
    CAP writes UTC as ``-00:00``."""
    text = timezone.localtime(value).replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def sender_prefix() -> str:
    return getattr(settings, "CAP_SENDER_PREFIX", "bihuan:")


def sender_for(unit: Unit) -> str:
    return _token(f"{sender_prefix()}{unit.code}")


def district_of(unit: Unit) -> Unit:
    """The level-1 unit above ``unit`` (the unit itself at level 1)."""
    return unit if unit.level == 1 else Unit.objects.get(path=unit.path[:SEGMENT])


def _base_id(directive: Directive, district: Unit) -> str:
    return f"urn:bihuan:{_token(district.code)}:directive:{directive.pk}"


def version_times(directive: Directive) -> dict[int, datetime]:
    """When each version of the directive was made: v1 when issued, later ones from their audit rows."""
    times = {1: directive.issued_at}
    rows = AuditEntry.objects.filter(action="directive.update", target_type=directive._meta.label_lower,
                                     target_id=str(directive.pk)).values_list("changes", "created_at")
    for changes, at in rows:
        version = (changes or {}).get("version")
        if isinstance(version, int) and version > 1:
            times.setdefault(version, at)
    if directive.version not in times:  # written without its audit row (fixtures, imports)
        times[directive.version] = directive.updated_at or directive.issued_at
    return times


class _Message:
    """What every message of one directive shares: sender, identifiers, the times of its versions."""

    def __init__(self, directive: Directive):
        self.directive = directive
        issuer = directive.issuer_unit
        self.district = district_of(issuer)
        self.base = _base_id(directive, self.district)
        self.sender = sender_for(issuer)
        self.times = version_times(directive)

    def version_id(self, version: int) -> str:
        return f"{self.base}:v{version}"

    def ref(self, version: int) -> str:
        """``sender,identifier,sent`` of version ``version`` (v1 the Alert, later ones Updates)."""
        return f"{self.sender},{self.version_id(version)},{cap_time(self.times[version])}"

    def refs(self, up_to: int) -> str:
        return " ".join(self.ref(v) for v in range(1, up_to + 1) if v in self.times)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _header(root: ET.Element, *, identifier: str, sender: str, sent: datetime, exercise: bool, msg_type: str,
            note: str = "", references: str = "") -> None:
    _sub(root, "identifier", identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(sent))
    _sub(root, "status", "Exercise" if exercise else "Actual")
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", "Public")
    if note:
        _sub(root, "note", note)
    if references:
        _sub(root, "references", references)


def _serialize(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)


def area_names(directive: Directive) -> tuple[list[str], int]:
    """Names of the (topmost) target units, at most AREA_NAMES, and how many there are."""
    paths = target_paths(directive)
    names = list(Unit.objects.filter(path__in=paths[:AREA_NAMES]).order_by("path").values_list("name", flat=True))
    return names, len(paths)


def is_district_wide(directive: Directive) -> bool:
    """Unfiltered and addressed to the district itself (or to its command office, i.e. every township)."""
    scope = directive.scope_unit
    whole = scope.level == 1 or (scope.level == 2 and scope.kind == UnitKind.COMMAND_OFFICE)
    return whole and not directive.target_kinds and not directive.target_unit_ids and not directive.household_flag


def default_msg_type(directive: Directive) -> str:
    if directive.status == DirectiveStatus.CANCELLED:
        return "Cancel"
    return "Update" if directive.version > 1 else "Alert"


def alert_xml(directive: Directive, msg_type: str = "Alert") -> bytes:
    """The directive as a CAP 1.2 ``Alert`` (its first version), ``Update`` (its current version) or
    ``Cancel`` (once cancelled or closed). Raises DirectiveError ("type: …") for a message that does not
    exist (an Update of a directive never changed, a Cancel of one still running, an Alert of one whose
    first text was replaced — its current message is an Update)."""
    if msg_type not in MSG_TYPES:
        raise DirectiveError(f"type: one of {', '.join(MSG_TYPES)}")
    m = _Message(directive)
    d = directive
    if msg_type == "Alert":
        if d.version > 1:
            raise DirectiveError(f"type: the directive is at version {d.version}; its current message is an Update")
        identifier, sent, refs, note = m.version_id(1), m.times[1], "", ""
    elif msg_type == "Update":
        if d.version < 2:
            raise DirectiveError.conflict("type: the directive has not been updated; its message is the Alert")
        identifier, sent, refs, note = m.version_id(d.version), m.times[d.version], m.refs(d.version - 1), ""
    else:
        if d.status == DirectiveStatus.ISSUED or d.closed_at is None:
            raise DirectiveError.conflict("type: the directive is neither cancelled nor closed")
        identifier, sent, refs = f"{m.base}:cancel", d.closed_at, m.refs(d.version)
        what = "撤销" if d.status == DirectiveStatus.CANCELLED else "销号"
        note = f"{what}：{d.close_reason}" if d.close_reason else what

    root = ET.Element(f"{{{NS}}}alert")
    _header(root, identifier=identifier, sender=m.sender, sent=sent, exercise=d.is_exercise, msg_type=msg_type,
            note=note, references=refs)
    info = _sub(root, "info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", "Health")
    _sub(info, "event", EVENT)
    urgency, severity, certainty = URGENCY_MAP[d.urgency]
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    _sub(info, "senderName", d.issuer_unit.name)
    _sub(info, "headline", d.title)
    _sub(info, "description", d.body)
    area = _sub(info, "area")
    names, total = area_names(d)
    desc = "、".join(names)
    if total > len(names):
        desc += f" 等 {total} 个单位"
    _sub(area, "areaDesc", desc or d.scope_unit.name)
    if is_district_wide(d) and re.fullmatch(r"\d{6}", m.district.code):
        geocode = _sub(area, "geocode")
        _sub(geocode, "valueName", GEOCODE_NAME)
        _sub(geocode, "value", m.district.code)
    return _serialize(root)


def ack_xml(loop: Loop) -> bytes:
    """A unit's sign-off (签收) of a directive as a CAP ``Ack`` from that unit, referencing the message of
    the directive that was current when it signed. Raises DirectiveError if the unit has not signed."""
    if loop.kind != RECEIPT:
        raise DirectiveError("receipt: not a directive receipt")
    if loop.acknowledged_at is None:
        raise DirectiveError.conflict("receipt: the unit has not signed for the directive yet")
    directive = Directive.objects.select_related("issuer_unit").get(pk=loop.subject_id)
    m = _Message(directive)
    version = max((v for v, at in m.times.items() if at <= loop.acknowledged_at), default=1)
    unit = loop.owner_unit
    root = ET.Element(f"{{{NS}}}alert")
    _header(root, identifier=f"{m.base}:ack:{_token(unit.code)}", sender=sender_for(unit),
            sent=loop.acknowledged_at, exercise=directive.is_exercise, msg_type="Ack",
            note=f"{unit.name} 已签收", references=m.ref(version))
    return _serialize(root)
