import pytest


@pytest.fixture
def extra_grid_worker(district):
    """A second responsible person on branch A's grid (a person the access matrices can act on)."""
    from bihuan.core.roles import Role
    from bihuan.testing import create_staff

    return create_staff(district.grid_a, "grid_a2", Role.BUILDING_LEADER, name="楼长甲")
