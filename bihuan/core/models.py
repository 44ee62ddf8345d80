from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One row per write, reveal or export of personal data: who, when, in which unit, what changed."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_unit = models.ForeignKey("register.Unit", null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    # The hash chain (core.audit.seal): the row's place in the chain and sha256(previous hash | this row's
    # content). Written once, by the sealer, shortly after the row; ``bihuan verify_audit`` checks it.
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    hash = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        indexes = [models.Index(fields=["target_type", "target_id"]),
                   models.Index(fields=["actor", "action", "created_at"], name="audit_actor_action")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_type}:{self.target_id}"


class ApiToken(models.Model):
    """A bearer token for /api/v1/. Only its hash is stored; the token is shown once at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    # What the token may do: read only (GET) unless can_write; within the subtree of subtree_unit_id (a unit inside
    # the user's own part of the district; None: all of it); until expires_at (always set on new tokens).
    can_write = models.BooleanField(default=False)
    subtree_unit_id = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def expired(self, now=None) -> bool:
        from django.utils import timezone

        return self.expires_at is None or self.expires_at <= (now or timezone.now())

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def new_key() -> str:
        return "bh_" + secrets.token_urlsafe(32)


class LoginThrottle(models.Model):
    """Failed sign-ins of one account (``user:<username>``) or one client address (``ip:<address>``) within the
    current window, and until when it is locked (``bihuan.login``)."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"


class SessionFence(models.Model):
    """Sessions of ``user`` that began before ``valid_after`` are over ("log out everywhere", a password change)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    valid_after = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} after {self.valid_after:%Y-%m-%d %H:%M}"


class RateCounter(models.Model):
    """Requests of one key (a hashed client address or public link) in one fixed window: the public pages' flood
    guard, in the database (no cache server). ``bihuan.core.ratelimit``; old windows are deleted as they pass."""

    key = models.CharField(max_length=64)
    bucket = models.BigIntegerField()  # the window's number: epoch seconds // window length
    hits = models.PositiveIntegerField(default=0)
    expires = models.BigIntegerField(db_index=True)  # epoch seconds after which the row is of no use

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "bucket"], name="one_rate_counter_per_key_and_bucket")]

    def __str__(self) -> str:
        return f"{self.key}@{self.bucket}: {self.hits}"


class TotpDevice(models.Model):
    """A user's authenticator app (TOTP, RFC 6238): the shared secret sealed like personal data, confirmed once a
    first code matched, and the last time step used (a code is accepted once: no replay)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device")
    secret_sealed = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"TOTP of {self.user_id}{'' if self.confirmed_at else ' (unconfirmed)'}"


class RecoveryCode(models.Model):
    """A one-time code for signing in without the authenticator app; only its hash is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}{' (used)' if self.used_at else ''}"
