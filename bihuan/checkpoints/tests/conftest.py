import datetime as dt
import uuid

import pytest
from django.utils import timezone

from bihuan.checkpoints import matching
from bihuan.checkpoints.actions import do_create_checkpoint
from bihuan.policy.models import RiskArea, RiskLevel
from bihuan.testing import make_id_number


@pytest.fixture(autouse=True)
def _fresh_policy():
    matching.forget_policy()
    yield
    matching.forget_policy()


@pytest.fixture
def ctx(district):
    """The base district with a checkpoint at community A and a high-risk area in force."""
    d = district
    RiskArea.objects.create(level=RiskLevel.HIGH, name="上海市浦东新区", effective_from=dt.date(2020, 1, 1))
    d.checkpoint = do_create_checkpoint(unit=d.community_a, name="鼓楼社区东卡口", kind="compound_gate",
                                        acting_user=d.users["community_a"])
    d.checkpoint_b = do_create_checkpoint(unit=d.village_b, name="东羊村口", kind="village_entrance",
                                          acting_user=d.users["village_b"])
    return d


def person(name="张伟", birth=dt.date(1988, 8, 8), sex="M", **kw):
    return {"name": name, "id_number": kw.pop("id_number", make_id_number(birth, sex)), "phone": kw.pop("phone", ""),
            "origin": kw.pop("origin", "上海市浦东新区"), "destination": kw.pop("destination", "锦悦小区3号楼2单元401"),
            "temperature": kw.pop("temperature", "36.5"), "health_code": kw.pop("health_code", "green"),
            "test_hours": kw.pop("test_hours", "24"), **kw}


def token() -> str:
    return uuid.uuid4().hex


def today():
    return timezone.localdate()
