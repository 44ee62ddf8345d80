"""The situation board's field-force figures, live: posts short on the roster now (fewer people rostered than
required this hour), posts under-staffed now (fewer people on duty — tapped on, not off — than required), tasks
past their deadline, disinfection places overdue. Each is one ``Area.count`` (one GROUP BY) and links to the list
behind it, filtered the same way (``forces.selectors``)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from bihuan.core.today import Area, Figure, provider, table
from bihuan.loops.models import Loop, overdue_sql

from . import selectors
from .models import TASK, Place, Post


@provider
def forces_figures(area: Area) -> list[Figure]:
    posts = f"{table(Post)} p"
    where, params = selectors.posts_short_now_sql(area.now, "p", on_duty=False)
    gaps, grows = area.count(posts, "p.path", where, params)
    where, params = selectors.posts_short_now_sql(area.now, "p", on_duty=True)
    short, srows = area.count(posts, "p.path", where, params)
    late, lrows = area.count(f"{table(Loop)} l", "l.path", f"l.kind = %s AND {overdue_sql('l.')} = 1",
                             [TASK, *[selectors.adapt(area.now)] * 2])
    where, params = selectors.places_overdue_sql(area.now, "p")
    places, prows = area.count(f"{table(Place)} p", "p.path", where, params)
    u = f"?unit={area.unit_id}"
    return [
        Figure("forces.roster_gaps_now", _("此刻排班不足的岗位"), gaps, reverse("forces:posts") + u + "&now=gap",
               grows, hint=_("给岗位排班，或从其他岗位调人"), order=60),
        Figure("forces.posts_short_now", _("此刻在岗人数不足的岗位"), short,
               reverse("forces:posts") + u + "&now=short", srows, hint=_("电话催促排班人员上岗"), order=61),
        Figure("forces.tasks_overdue", _("超时未完成的任务"), late, reverse("forces:tasks") + u + "&overdue=1",
               lrows, hint=_("催办志愿者或服务队"), order=62),
        Figure("forces.places_overdue", _("超期未消杀的点位（盲区）"), places,
               reverse("forces:places") + u + "&overdue=1", prows, hint=_("安排消杀并登记记录"), order=63),
    ]
