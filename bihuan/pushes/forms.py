"""Parsing of the pushed-list pages' forms. Shapes only: the rules live in ``verify`` and ``transfers``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from bihuan.register.models import SEGMENT, Unit, UnitKind

from .models import Outcome
from .verify import OUTCOME_FIELDS, OUTCOME_OPTIONAL

SECTIONS = {
    "trip": ("origin", "arrival_date"),
    "address": ("destination", "compound", "building", "entrance", "room", "dwelling_type", "cohabitants"),
    "health": ("health_status", "vaccine_doses"),
    "outcome": (),
}
STATUSES = [("", _("全部")), ("open", _("待核查")), ("overdue", _("已超时")), ("done", _("已完成")),
            ("transferring", _("转办中"))]


def _rows(post, prefix: str, names: tuple[str, ...]) -> list[dict]:
    columns = [post.getlist(f"{prefix}_{n}") for n in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=False)]


def form_data(post) -> dict:
    """The ``data`` dict for ``do_save_verification`` from the whole form (one save): every section's fields, and
    the outcome with its detail when one is chosen — validated together, so nothing typed is dropped."""
    data: dict = {}
    for section in ("trip", "address", "health"):
        data |= section_data(post, section)
    if post.get("outcome"):
        data |= section_data(post, "outcome")
    return data


def section_data(post, section: str) -> dict:
    """The ``data`` dict for ``do_save_verification`` from one section of the page's form."""
    if section not in SECTIONS:
        raise forms.ValidationError("unknown section")
    data = {name: post.get(name, "") for name in SECTIONS[section]}
    if section == "trip":
        data["visited"] = [{"place": r["place"], "from": r["from"], "to": r["to"]}
                           for r in _rows(post, "visited", ("place", "from", "to"))]
    elif section == "health":
        symptoms = post.getlist("symptoms") + [s for s in post.get("symptoms_other", "").replace("，", ",").split(",")]
        data["symptoms"] = [s.strip() for s in symptoms if s.strip()]
        data["tests"] = _rows(post, "test", ("date", "result"))
    elif section == "outcome":
        outcome = post.get("outcome", "")
        data["outcome"] = outcome
        if outcome in OUTCOME_FIELDS:
            for name in OUTCOME_FIELDS[outcome] + OUTCOME_OPTIONAL[outcome]:
                data[name] = post.get(f"{outcome}__{name}", "")
    return data


def unit_groups(district_path: str, exclude=()) -> list[tuple[str, list[tuple[str, str]]]]:
    """Townships with their communities and villages (what a person can be transferred or dispatched to),
    one query: a few hundred options, each (id as text, name) — ready to print and to compare with a posted
    value. ``exclude``: unit ids not offered (one's own unit, for a transfer)."""
    rows = (Unit.objects.filter(path__startswith=district_path[:SEGMENT], level__in=(3, 4))
            .exclude(kind__in=(UnitKind.COMMAND_OFFICE, UnitKind.DEPARTMENT))
            .order_by("path").values_list("id", "level", "name", "path"))
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    skip = set(exclude)
    own_level = gettext("%(name)s（本级）")  # translated once, not once per township
    for pk, level, name, _path in rows:
        if pk in skip:
            if level == 3:
                groups.append((name, []))
            continue
        if level == 3:
            groups.append((name, [(str(pk), own_level % {"name": name})]))
        elif groups:
            groups[-1][1].append((str(pk), name))
    return [(township, units) for township, units in groups if units]


class TransferForm(forms.Form):
    to_unit = forms.IntegerField(label=_("转给"))
    reason = forms.CharField(label=_("转办理由"), max_length=300)


class ReturnForm(forms.Form):
    reason = forms.CharField(label=_("退回理由"), max_length=300)


class DispatchForm(forms.Form):
    unit = forms.IntegerField(label=_("分派给"))


OUTCOME_CHOICES = [(o.value, o.label) for o in Outcome]
