"""The situation board's register figures: blind spots (households without a grid, grids without a responsible
person), as the coverage report counts them."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.roles import RESPONSIBLE_ROLES
from bihuan.core.today import Area, Figure, provider, table

from .models import MAX_LEVEL, Household, Staff, Unit


@provider
def blind_spot_figures(area: Area) -> list[Figure]:
    un, hh, st = table(Unit), table(Household), table(Staff)
    households, hrows = area.count(f"{un} u JOIN {hh} h ON h.unit_id = u.id", "u.path", "u.level < %s", [MAX_LEVEL])
    spots = reverse("register:blind_spots", args=[area.unit_id])
    roles = sorted(str(r) for r in RESPONSIBLE_ROLES)
    grids, grows = area.count(
        f"{un} u", "u.path",
        f"u.level = %s AND NOT EXISTS (SELECT 1 FROM {st} s WHERE s.unit_id = u.id AND s.deactivated_at IS NULL "
        f"AND s.role IN ({', '.join(['%s'] * len(roles))}))", [MAX_LEVEL, *roles])
    return [
        Figure("register.households_without_grid", _("未划入网格的住户（盲区）"), households, spots, hrows,
               hint=_("把住户划入网格"), order=40),
        Figure("register.grids_without_responsible", _("没有网格员的网格（盲区）"), grids, spots, grows,
               hint=_("为网格指定网格员、楼长或村民代表"), order=41),
    ]
