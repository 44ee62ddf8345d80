"""Password rules beyond Django's validators (settings.AUTH_PASSWORD_VALIDATORS): a staff password is no product or
place word dressed with digits (``bihuan2022``), no short pattern repeated (``grid1grid1``), too few distinct
characters, or the person's own phone number."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Words an attacker tries first against this system.
GUESSABLE_WORDS = ("bihuan", "yaodu", "linfen", "password", "admin", "grid", "wangge", "shequ", "fangkong",
                   "yiqing", "hesuan", "qwerty", "abc", "123456", "888888", "666666")


def _core(password: str) -> str:
    """The password without digits and symbols, lower case: what is left of ``Bihuan@2022!``."""
    return re.sub(r"[^a-z]", "", password.lower())


class NotGuessableValidator:
    def validate(self, password: str, user=None) -> None:
        lowered = password.lower()
        core = _core(password)
        if core and any(core == w or core == w * 2 for w in GUESSABLE_WORDS) or core in ("", "abc"):
            raise ValidationError(_("密码不能只是常见词或系统名加数字（如 bihuan2022）"), code="guessable")
        for size in range(1, len(lowered) // 2 + 1):
            if len(lowered) % size == 0 and lowered[:size] * (len(lowered) // size) == lowered:
                raise ValidationError(_("密码不能是同一段字符的重复（如 grid1grid1）"), code="repeated")
        if len(set(lowered)) < 5:
            raise ValidationError(_("密码至少要有 5 个不同的字符"), code="too_few_characters")
        if user is not None:
            digits = re.sub(r"\D", "", password)
            staff = getattr(user, "staff", None) if getattr(user, "pk", None) else None
            if staff is not None and staff.phone_sealed and len(digits) >= 7:
                phone = staff.reveal_phone() if hasattr(staff, "reveal_phone") else ""
                if phone and (phone[-7:] in digits or digits in phone):
                    raise ValidationError(_("密码不能包含本人手机号"), code="phone")

    def get_help_text(self) -> str:
        return _("不能是常见词或系统名加数字、重复的字符段或本人手机号")
