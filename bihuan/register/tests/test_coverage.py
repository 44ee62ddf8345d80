from bihuan.register.coverage import blind_spot_lists, rollup
from bihuan.register.models import Household, Resident, subtree_q
from bihuan.testing import create_household, create_resident, create_unit


def recount(unit):
    sub = subtree_q(unit.path)
    return Household.objects.filter(sub).count(), Resident.objects.filter(sub).count()


def test_rollup_equals_a_recount_at_every_level(district):
    extra = create_household(district.compound_a, "锦悦小区无网格户")  # hangs on a compound: a blind spot
    create_resident(extra, "孙小明")
    units, totals = rollup()
    for u in units:
        households, residents = recount(u)
        assert totals[u.id].households == households, u.name
        assert totals[u.id].residents == residents, u.name
    root = totals[district.district.id]
    assert root.units_below == {2: 2, 3: 2, 4: 2, 5: 2, 6: 2}
    assert root.groups["elderly_alone"] == 1
    assert root.households_without_grid == 1
    assert totals[district.township_b.id].households_without_grid == 0


def test_blind_spots_name_grids_without_a_responsible_person_and_units_without_staff(district):
    empty_grid = create_unit(district.compound_a, "锦悦小区第2网格", "grid")
    _, totals = rollup(district.township_a)
    assert totals[district.township_a.id].grids_without_responsible == 1
    assert totals[district.township_a.id].units_without_staff == 0
    spots = blind_spot_lists(district.township_a)
    assert spots["grids_without_responsible"] == [empty_grid]
    assert totals[district.township_a.id].blind_spots == 1
