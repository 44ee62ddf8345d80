import datetime as dt

import pytest
from django.core.management import call_command

from bihuan.core import crypto
from bihuan.core.personal import (
    InvalidIdNumber,
    mask_id_number,
    mask_phone,
    normalize_id_number,
    normalize_phone,
)
from bihuan.register.models import Resident


def test_id_numbers_are_checked_with_the_gb11643_checksum():
    assert normalize_id_number("11010519491231002X") == "11010519491231002X"
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    with pytest.raises(InvalidIdNumber, match="checksum"):
        normalize_id_number("110105194912310021")
    with pytest.raises(InvalidIdNumber, match="birth date"):
        normalize_id_number("110105194913310023")


def test_fifteen_digit_and_full_width_id_numbers_become_eighteen_digits():
    assert normalize_id_number("110105491231002") == "11010519491231002X"
    assert normalize_id_number("１１０１０５４９１２３１００２") == "11010519491231002X"


def test_phones_lose_country_code_and_separators():
    assert normalize_phone("+86 138-1234-5678") == "13812345678"
    with pytest.raises(ValueError):
        normalize_phone("12345")


def test_masks_keep_only_the_ends():
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"


def test_sealed_values_round_trip_and_hide_the_clear_text():
    blob = crypto.seal("11010519491231002X")
    assert b"11010519491231002X" not in blob and crypto.unseal(blob) == "11010519491231002X"
    assert crypto.seal("x") != crypto.seal("x")  # fresh nonce every time
    assert crypto.lookup_hash("id", "a") == crypto.lookup_hash("id", "a") != crypto.lookup_hash("phone", "a")


def test_rotation_reseals_with_the_new_key_and_keeps_lookups(district, settings):
    old_key = settings.DATA_KEY
    before = {r.pk: (r.reveal_id_number(), r.id_hash) for r in Resident.objects.all()}
    settings.LOOKUP_KEY = "pinned-lookup-key"
    call_command("rotate_data_key", rehash=True)  # hashes now use the pinned lookup key
    pinned = {r.pk: r.id_hash for r in Resident.objects.all()}
    settings.DATA_KEY, settings.DATA_KEYS_OLD = crypto.generate_key(), [old_key]
    call_command("rotate_data_key")
    for r in Resident.objects.all():
        assert crypto.sealed_with_current_key(r.id_sealed) and crypto.sealed_with_current_key(r.phone_sealed)
        assert r.reveal_id_number() == before[r.pk][0]
        assert r.id_hash == pinned[r.pk]
    settings.DATA_KEYS_OLD = []
    assert Resident.objects.first().reveal_id_number()  # opens without the old key now


def test_rotation_skips_values_already_sealed_with_the_current_key(district, capsys):
    call_command("rotate_data_key")
    assert "register.Resident: 0 rows re-sealed" in capsys.readouterr().out


def test_age_is_computed_from_the_birth_date(district):
    r = district.resident_a
    assert r.age(dt.date(2025, 3, 9)) == 50 and r.age(dt.date(2025, 3, 8)) == 49
