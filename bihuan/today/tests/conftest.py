import pytest


@pytest.fixture
def demo_day(db):
    """The tiny district with its day in progress (built through the actions, as of now)."""
    from bihuan.demo.day import build_day
    from bihuan.demo.generate import generate_district

    generate_district("tiny", seed=1, out=lambda line: None)
    build_day(seed=1, out=lambda line: None)
    from django.contrib.auth import get_user_model

    return {u.username: u for u in get_user_model().objects.all()}
