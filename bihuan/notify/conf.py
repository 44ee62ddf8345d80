"""Notification settings, read from the environment with strict parsing (see docs/operations.md).

They are read on every call of ``load`` (a few ``os.environ`` lookups), so a worker picks up nothing stale
and tests can change them with ``monkeypatch.setenv``. ``NotifyConfig.ready`` calls ``load`` once so that a
malformed value stops the start instead of the first send.

| variable | default | meaning |
|---|---|---|
| BIHUAN_SMTP_HOST | (unset: no email) | SMTP server; setting it turns the email channel on |
| BIHUAN_SMTP_PORT | 465 with SSL, 587 with TLS, else 25 | |
| BIHUAN_SMTP_USER / BIHUAN_SMTP_PASSWORD | empty | SMTP login |
| BIHUAN_SMTP_USE_TLS | true | STARTTLS |
| BIHUAN_SMTP_USE_SSL | false | implicit TLS (port 465); exclusive with USE_TLS |
| BIHUAN_MAIL_FROM | required with SMTP_HOST | sender address, e.g. ``闭环 <bihuan@example.gov.cn>`` |
| BIHUAN_SMS_URL | (unset: no SMS) | HTTP gateway; setting it turns the SMS channel on |
| BIHUAN_SMS_TOKEN | required with SMS_URL | sent as ``Authorization: Bearer …`` |
| BIHUAN_SMS_MAX_CHARS | 300 | longer texts are cut (the full text is in the inbox) |
| BIHUAN_NOTIFY_TIMEOUT | 10 | seconds for one SMTP / HTTP exchange |
| BIHUAN_NOTIFY_MAX_ATTEMPTS | 8 | attempts before a message is ``dead`` |
| BIHUAN_NOTIFY_RETRY_BASE | 30 | seconds before the first retry; doubled after each failure … |
| BIHUAN_NOTIFY_RETRY_CAP | 3600 | … up to this many seconds |
| BIHUAN_ROBOT_PER_MINUTE | 20 | requests to one group robot in any 60 s (WeCom and DingTalk allow 20) |
| BIHUAN_ROBOT_MAX_BYTES | 4000 | UTF-8 bytes of one robot message (WeCom markdown allows 4096) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from bihuan.env import ConfigError, env_bool, env_str


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bound}, got {number}")
    return number


def check_http_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return url


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    user: str
    password: str
    use_tls: bool
    use_ssl: bool
    sender: str

    @property
    def sender_domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "bihuan.local"


@dataclass(frozen=True)
class Sms:
    url: str
    token: str
    max_chars: int


@dataclass(frozen=True)
class Config:
    smtp: Smtp | None
    sms: Sms | None
    timeout: int
    max_attempts: int
    retry_base: int
    retry_cap: int
    robot_per_minute: int
    robot_max_bytes: int

    def backoff(self, attempts: int) -> int:
        """Seconds to wait after the ``attempts``-th failed attempt: base · 2^(attempts-1), capped."""
        return min(self.retry_cap, self.retry_base * 2 ** max(0, min(attempts - 1, 30)))


def _smtp() -> Smtp | None:
    host = os.environ.get("BIHUAN_SMTP_HOST", "").strip()
    if not host:
        return None
    use_ssl = env_bool("BIHUAN_SMTP_USE_SSL", False)
    use_tls = env_bool("BIHUAN_SMTP_USE_TLS", not use_ssl)
    if use_tls and use_ssl:
        raise ConfigError("BIHUAN_SMTP_USE_TLS and BIHUAN_SMTP_USE_SSL cannot both be true")
    sender = env_str("BIHUAN_MAIL_FROM", "")
    if "@" not in parseaddr(sender)[1]:
        raise ConfigError(f"BIHUAN_MAIL_FROM must be an email address when BIHUAN_SMTP_HOST is set, got {sender!r}")
    return Smtp(
        host=host,
        port=env_int("BIHUAN_SMTP_PORT", 465 if use_ssl else 587 if use_tls else 25, minimum=1, maximum=65535),
        user=os.environ.get("BIHUAN_SMTP_USER", ""),
        password=os.environ.get("BIHUAN_SMTP_PASSWORD", ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
        sender=sender,
    )


def _sms() -> Sms | None:
    url = os.environ.get("BIHUAN_SMS_URL", "").strip()
    if not url:
        return None
    token = os.environ.get("BIHUAN_SMS_TOKEN", "").strip()
    if not token:
        raise ConfigError("BIHUAN_SMS_TOKEN must be set when BIHUAN_SMS_URL is set")
    return Sms(url=check_http_url("BIHUAN_SMS_URL", url), token=token,
               max_chars=env_int("BIHUAN_SMS_MAX_CHARS", 300, minimum=20))


def load() -> Config:
    return Config(
        smtp=_smtp(),
        sms=_sms(),
        timeout=env_int("BIHUAN_NOTIFY_TIMEOUT", 10, minimum=1, maximum=300),
        max_attempts=env_int("BIHUAN_NOTIFY_MAX_ATTEMPTS", 8, minimum=1, maximum=100),
        retry_base=env_int("BIHUAN_NOTIFY_RETRY_BASE", 30, minimum=1),
        retry_cap=env_int("BIHUAN_NOTIFY_RETRY_CAP", 3600, minimum=1),
        robot_per_minute=env_int("BIHUAN_ROBOT_PER_MINUTE", 20, minimum=1, maximum=20),
        robot_max_bytes=env_int("BIHUAN_ROBOT_MAX_BYTES", 4000, minimum=200, maximum=20000),
    )
