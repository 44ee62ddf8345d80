"""A pushed list uploaded by one community does not name, date or link another unit's record that a row joined."""

from __future__ import annotations

import datetime as dt

from bihuan.pushes.dedupe import MERGED_ELSEWHERE
from bihuan.pushes.importing import create_batch
from bihuan.pushes.models import PushRow
from bihuan.testing import API_BASE, api_call, bearer, make_id_number


def _csv(rows):
    text = "姓名,身份证号,手机号,来源地,抵达时间,现住址\n" + "\n".join(rows) + "\n"
    return text.encode()


def test_a_row_that_joins_another_units_record_does_not_name_it(district, client):
    d = district
    secret = make_id_number(dt.date(1985, 4, 3))
    # the village of branch B pushed the person first (their record, routed under branch B)
    first = create_batch(_csv([f"赵六,{secret},13700001111,北京,2022-03-01,"]), "b.csv", source="省大数据中心",
                         unit=d.village_b, acting_user=d.users["village_b"])
    assert first.imported == 1
    # branch A's community uploads the same ID number
    batch = create_batch(_csv([f"赵六,{secret},,北京,2022-03-02,"]), "a.csv", source="市大数据中心",
                         unit=d.community_a, acting_user=d.users["community_a"])
    row = PushRow.objects.get(batch=batch)
    assert row.result == "merged" and row.reason == MERGED_ELSEWHERE  # no date, no field, no unit
    items = api_call(client, bearer(d.users["community_a"]), "GET",
                     f"{API_BASE}/pushes/batches/{batch.pk}/rows").json()["items"]
    assert items[0]["person_id"] is None and items[0]["reason"] == MERGED_ELSEWHERE
