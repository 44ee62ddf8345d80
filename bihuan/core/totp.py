"""The second factor: TOTP (RFC 6238, an authenticator app) with one-time recovery codes.

Required for roles that can reveal full personal data, export personal data or manage accounts
(``REQUIRED_PERMS``) when ``settings.TOTP_ENFORCE`` is on (outside demo mode by default); optional for everyone
else. A user who has enrolled always gives a code after the password. Enrolment, confirmation, use of a recovery
code and reset by an administrator are audited. Codes are accepted once (the time step is remembered)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import audit, crypto
from .errors import Refused
from .models import RecoveryCode, TotpDevice
from .roles import PERMISSIONS, Perm

REQUIRED_PERMS = frozenset({Perm.REVEAL_PERSONAL, Perm.EXPORT_REGISTER, Perm.MANAGE_STAFF})
SESSION_KEY = "bihuan_second_factor"  # the user id whose second factor this session has passed
RECOVERY_CODES = 10
ISSUER = "Bihuan"


def required_for_role(role: str | None) -> bool:
    return bool(role) and bool(PERMISSIONS.get(role, frozenset()) & REQUIRED_PERMS)


def _hash(code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), code.encode(), hashlib.sha256).hexdigest()


def device_of(user) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user).first()


def enrolled(user) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def secret_of(device: TotpDevice) -> str:
    return crypto.unseal(device.secret_sealed)


def provisioning_uri(user, device: TotpDevice) -> str:
    return pyotp.TOTP(secret_of(device)).provisioning_uri(name=user.get_username(), issuer_name=ISSUER)


def do_start_enrolment(*, user) -> TotpDevice:
    """A new, unconfirmed secret for ``user`` (replacing an unconfirmed one; a confirmed one stays until reset)."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed_at is not None:
            raise Refused("code", "已启用两步验证 (the second factor is already on)")
        sealed = crypto.seal(pyotp.random_base32())
        if device is None:
            device = TotpDevice.objects.create(user=user, secret_sealed=sealed)
        else:
            device.secret_sealed, device.last_step = sealed, 0
            device.save(update_fields=["secret_sealed", "last_step"])
        audit.record(actor=user, action="totp.enrol_start", target=user, changes={})
    return device


def _step_matching(device: TotpDevice, code: str) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret_of(device))
    now = int(timezone.now().timestamp())
    for drift in (0, -1, 1):  # a phone's clock may be 30 s off
        at = now + drift * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return at // totp.interval
    return None


def do_confirm_enrolment(*, user, code: str) -> list[str]:
    """Turn the second factor on with a first matching code; returns the recovery codes (shown once)."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
        if device is None:
            raise Refused("code", "请先开始启用 (start the enrolment first)")
        step = _step_matching(device, code)
        if step is None:
            raise Refused("code", "验证码不正确 (the code does not match)")
        device.confirmed_at, device.last_step = timezone.now(), step
        device.save(update_fields=["confirmed_at", "last_step"])
        codes = _new_recovery_codes(user)
        audit.record(actor=user, action="totp.enrol", target=user, changes={"recovery_codes": len(codes)})
    return codes


def _new_recovery_codes(user) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = ["-".join(secrets.token_hex(3) for _ in range(2)) for _ in range(RECOVERY_CODES)]
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash(c)) for c in codes])
    return codes


def do_verify(*, user, code: str) -> bool:
    """True if ``code`` is the current TOTP code (not used before) or an unused recovery code (then spent)."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
        if device is None:
            return False
        step = _step_matching(device, code)
        if step is not None:
            if step <= device.last_step:
                return False  # this code was used already
            device.last_step = step
            device.save(update_fields=["last_step"])
            return True
        cleaned = (code or "").strip().lower()
        spent = RecoveryCode.objects.filter(user=user, code_hash=_hash(cleaned), used_at__isnull=True).update(
            used_at=timezone.now())
        if spent:
            audit.record(actor=user, action="totp.recovery_code", target=user,
                         changes={"left": RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()})
        return bool(spent)


# Why an administrator resets someone's second factor: the short list a page offers (code → label); any other
# non-empty text is taken as the reason itself (``reset_reason``).
RESET_REASONS = {
    "lost": gettext_lazy("手机丢失或被盗"),
    "new_phone": gettext_lazy("更换了手机"),
    "app": gettext_lazy("验证器应用被删除或无法使用"),
    "codes": gettext_lazy("恢复码用完或遗失"),
}


def reset_reason(reason: str) -> str:
    """The reason to audit: a listed code becomes ``"code: label"``; other text is kept as it is (trimmed, at most
    200 characters). Refused when blank."""
    reason = (reason or "").strip()
    if reason in RESET_REASONS:
        return f"{reason}: {RESET_REASONS[reason]}"
    if not reason:
        raise Refused("reason", _("请选择或填写重置原因"))
    return reason[:200]


def has_factor(user) -> bool:
    """Whether ``user`` has anything a reset would remove (an authenticator, confirmed or not, or recovery codes)."""
    return (TotpDevice.objects.filter(user=user).exists()
            or RecoveryCode.objects.filter(user=user).exists())


def do_reset(*, user, acting_user, reason: str) -> None:
    """Remove ``user``'s second factor (lost phone): they enrol again at the next sign-in. Audited with the reason.
    Called by ``bihuan.second_factor.do_reset_second_factor`` (the page and the ``reset_2fa`` command), which
    checks who may and tells the person."""
    with transaction.atomic():
        TotpDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        audit.record(actor=acting_user, action="totp.reset", target=user, changes={"reason": reason[:200]})
