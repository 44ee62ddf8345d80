"""Validation, normalisation and masking of personal identifiers."""

from __future__ import annotations

import datetime as dt
import operator
import re

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"Ｘ": "X", "ｘ": "X"})


_ID_SHAPE = re.compile(r"\d{17}[\dX]", re.ASCII)  # not Arabic-Indic or other Unicode digits


class InvalidIdNumber(ValueError):
    pass


def id_checksum(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("id_checksum: 17 digits expected")
    return _CHECK[sum(map(operator.mul, map(int, first17), _WEIGHTS)) % 11]


def normalize_id_number(raw: str) -> str:
    """Return a valid 18-character ID number or raise InvalidIdNumber with the reason."""
    value = (raw or "").translate(_FULLWIDTH).strip().upper().replace(" ", "")
    if len(value) == 15 and value.isascii() and value.isdigit():  # "²".isdigit() is true
        # First-generation numbers: insert the century and append the check digit.
        value = value[:6] + "19" + value[6:]
        value = value + id_checksum(value)
    if not _ID_SHAPE.fullmatch(value):
        raise InvalidIdNumber("ID number must be 18 characters: 17 digits and a digit or X")
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber("ID number has an impossible birth date") from exc
    if birth > dt.date.today() or birth.year < 1880:
        raise InvalidIdNumber("ID number has an impossible birth date")
    if id_checksum(value[:17]) != value[17]:
        raise InvalidIdNumber("ID number checksum (GB 11643) does not match")
    return value


def birth_date_from_id(id_number: str) -> dt.date:
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def sex_from_id(id_number: str) -> str:
    return "M" if int(id_number[16]) % 2 else "F"


def normalize_phone(raw: str) -> str:
    """Digits only, without +86 / 0086; raise ValueError if it is no Chinese mobile or landline."""
    value = (raw or "").translate(_FULLWIDTH)
    digits = re.sub(r"\D", "", value, flags=re.ASCII)  # ASCII digits only: never Arabic-Indic or other digits
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if re.fullmatch(r"1[3-9]\d{9}", digits) or re.fullmatch(r"0\d{9,11}", digits):
        return digits
    raise ValueError("phone must be an 11-digit mobile number or a landline with area code")


def mask_id_number(id_number: str) -> str:
    return f"{id_number[:6]}********{id_number[-4:]}" if id_number else ""


def mask_phone(phone: str) -> str:
    if not phone:
        return ""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else f"{phone[:4]}****{phone[-3:]}"
