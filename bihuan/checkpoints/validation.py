"""Checking what is typed at a checkpoint and on the self-report page: Chinese plates (including 8-character
new-energy plates), ID numbers (GB 11643 checksum; 15 digits become 18), phones, temperatures. Every refusal is
a ``Refused`` naming the field, with a message a person at a checkpoint understands."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from bihuan.core.errors import Refused
from bihuan.core.personal import InvalidIdNumber, normalize_id_number, normalize_phone

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTER = "A-HJ-NP-Z"  # plates use no I and no O
_ORDINARY = re.compile(f"^[{PROVINCES}][{LETTER}][{LETTER}0-9]{{4}}[{LETTER}0-9挂学警港澳]$")
# New energy (2017): small cars D/F then a letter or digit and four digits; large vehicles five digits then D/F.
_NEW_ENERGY = re.compile(f"^[{PROVINCES}][{LETTER}](?:[DF][{LETTER}0-9][0-9]{{4}}|[0-9]{{5}}[DF])$")
_SEPARATORS = re.compile(r"[\s·•.\-_]+")


class CheckpointError(Refused):
    """Refused at a checkpoint or on the self-report page; ``field`` names the form field."""


def clean_plate(raw: str, field: str = "plate") -> str:
    """A plate as stored (upper case, no separators), or a refusal that says what is wrong."""
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or "")).upper()
    if not text:
        raise CheckpointError(field, _("请填写车牌号"))
    if text[0] not in PROVINCES:
        raise CheckpointError(field, _("车牌第 1 位应为省份简称（如 晋、京、沪）"))
    if len(text) > 1 and not re.match(f"[{LETTER}]", text[1]):
        raise CheckpointError(field, _("车牌第 2 位应为发牌机关字母（A–Z，不含 I、O）"))
    if "I" in text[1:] or "O" in text[1:]:
        raise CheckpointError(field, _("车牌中不使用字母 I 和 O（请改为数字 1 和 0）"))
    if len(text) == 8:
        if _NEW_ENERGY.match(text):
            return text
        raise CheckpointError(field, _("8 位新能源车牌应为 省份+字母+D/F+5 位（如 晋LD12345），"
                                       "或大型车 省份+字母+5 位数字+D/F"))
    if len(text) == 7 and _ORDINARY.match(text):
        return text
    raise CheckpointError(field, _("车牌号应为 7 位（新能源车 8 位），如 晋L12345、晋LD12345；现为 %(n)s 位")
                          % {"n": len(text)})


def clean_id_number(raw: str, field: str = "id_number") -> str:
    """An 18-character ID number ('' if blank); a 15-digit one is converted. Refuses with the reason."""
    text = (raw or "").strip()
    if not text:
        return ""
    try:
        return normalize_id_number(text)
    except InvalidIdNumber as exc:
        reason = str(exc)
        if "checksum" in reason:
            message = _("身份证号校验位不对，请逐位核对（最后一位可能是 X）")
        elif "birth" in reason:
            message = _("身份证号中的出生日期不存在，请核对第 7–14 位")
        else:
            message = _("身份证号应为 18 位（或 15 位旧号）")
        raise CheckpointError(field, message) from None


def clean_phone(raw: str, field: str = "phone") -> str:
    text = (raw or "").strip()
    if not text:
        return ""
    try:
        return normalize_phone(text)
    except ValueError:
        raise CheckpointError(field, _("手机号应为 11 位（或带区号的固定电话）")) from None


def clean_temperature(raw, field: str = "temperature") -> Decimal | None:
    text = str(raw or "").strip().replace("℃", "").replace("°", "")
    if not text:
        return None
    try:
        value = Decimal(text).quantize(Decimal("0.1"))
    except InvalidOperation:
        raise CheckpointError(field, _("体温应为数字，如 36.5")) from None
    if not Decimal("34.0") <= value <= Decimal("43.0"):
        raise CheckpointError(field, _("体温应在 34.0 到 43.0 ℃ 之间"))
    return value


def clean_text(raw, field: str, limit: int, *, required: bool = False) -> str:
    text = " ".join(unicodedata.normalize("NFKC", str(raw or "")).split())
    if required and not text:
        raise CheckpointError(field, _("必填"))
    if len(text) > limit:
        raise CheckpointError(field, _("最多 %(n)s 个字") % {"n": limit})
    return text
