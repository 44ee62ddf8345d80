"""Sending one message (or one robot digest) through each channel.

Each sender returns on success and raises ``SendError`` otherwise; ``permanent=True`` means retrying cannot
help (the message goes ``dead`` at once). HTTP goes through ``urllib.request`` with the configured timeout.

Resending after a crash between "sent" and "marked sent" is made harmless where the receiver allows it: the
SMS gateway gets the idempotency key as ``id``, and an email's ``Message-ID`` is derived from the key, so mail
clients and archives fold a duplicate into one. Group robots have no such field; a duplicate digest there is
possible only if a worker dies in the few milliseconds between the robot's answer and the commit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import smtplib
import time
import urllib.error
import urllib.request
from urllib.parse import quote_plus, urlsplit

from django.core.mail import EmailMessage, get_connection

from .conf import Config


class SendError(Exception):
    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


def message_id(key: str, domain: str) -> str:
    """A stable RFC 5322 Message-ID for an idempotency key: the same message always has the same id."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def post_json(url: str, payload: dict, *, timeout: int, headers: dict | None = None) -> tuple[int, bytes]:
    """POST ``payload`` as UTF-8 JSON; return (status, body) for any HTTP answer, raise SendError if none."""
    data = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URLs are checked http(s)
            return response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536) if exc.fp else b""
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, truncated answers
        # Name the host only: the query string carries robot access tokens.
        raise SendError(f"{urlsplit(url).netloc}: {getattr(exc, 'reason', exc)}") from exc


def _robot_answer(status: int, body: bytes, what: str) -> None:
    """WeCom and DingTalk both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` on success."""
    if status != 200:
        raise SendError(f"{what}: HTTP {status}")
    try:
        answer = json.loads(body)
        errcode = int(answer.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        raise SendError(f"{what}: answer is not JSON with errcode") from None
    if errcode != 0:
        raise SendError(f"{what}: errcode {errcode} {str(answer.get('errmsg', ''))[:200]}")


def send_wecom(url: str, content: str, *, timeout: int) -> None:
    """WeCom group robot: a markdown message (content up to 4096 bytes)."""
    status, body = post_json(url, {"msgtype": "markdown", "markdown": {"content": content}}, timeout=timeout)
    _robot_answer(status, body, "wecom")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int | None = None) -> str:
    """The webhook URL with ``timestamp`` and ``sign`` as DingTalk documents them:
    sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")))."""
    if not secret:
        return url  # a robot secured by keyword or IP range instead of signing
    timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def send_dingtalk(url: str, secret: str, content: str, *, timeout: int) -> None:
    status, body = post_json(dingtalk_signed_url(url, secret), {"msgtype": "text", "text": {"content": content}},
                             timeout=timeout)
    _robot_answer(status, body, "dingtalk")


def send_sms(config: Config, *, key: str, phone: str, text: str) -> None:
    """POST {"id", "phone", "text"} with a bearer token; any 2xx is sent. The gateway de-duplicates on ``id``."""
    sms = config.sms
    if sms is None:
        raise SendError("SMS is not configured (BIHUAN_SMS_URL)")
    if not phone:
        raise SendError("no phone number", permanent=True)
    if len(text) > sms.max_chars:
        text = text[: sms.max_chars - 1] + "…"
    status, _body = post_json(sms.url, {"id": key, "phone": phone, "text": text}, timeout=config.timeout,
                              headers={"Authorization": f"Bearer {sms.token}"})
    if 200 <= status < 300:
        return
    # A request the gateway rejects as malformed will be rejected again; auth, throttling and 5xx may heal.
    permanent = status in {400, 404, 410, 422}
    raise SendError(f"sms gateway: HTTP {status}", permanent=permanent)


class EmailSender:
    """Django's SMTP backend with the BIHUAN_SMTP_* settings; one connection for a whole batch."""

    BACKEND = "django.core.mail.backends.smtp.EmailBackend"

    def __init__(self, config: Config):
        self.config = config
        self.connection = None

    def send(self, *, key: str, to: str, subject: str, body: str) -> None:
        smtp = self.config.smtp
        if smtp is None:
            raise SendError("email is not configured (BIHUAN_SMTP_HOST)")
        if not to:
            raise SendError("no email address", permanent=True)
        email = EmailMessage(subject=subject.replace("\n", " "), body=body, from_email=smtp.sender, to=[to],
                             headers={"Message-ID": message_id(key, smtp.sender_domain)})
        try:
            if self.connection is None:
                self.connection = get_connection(
                    self.BACKEND, host=smtp.host, port=smtp.port, username=smtp.user, password=smtp.password,
                    use_tls=smtp.use_tls, use_ssl=smtp.use_ssl, timeout=self.config.timeout, fail_silently=False)
                self.connection.open()  # opened here, the backend keeps it open across send_messages calls
            sent = self.connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            # 5xx is final (no such mailbox); 4xx (greylisting, mailbox busy) is worth another try.
            permanent = all(code >= 500 for code, _msg in exc.recipients.values())
            raise SendError(f"smtp: recipient refused {exc.recipients}", permanent=permanent) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # the connection may be half-dead: open a fresh one for the next message
            raise SendError(f"smtp: {exc}") from exc
        if sent != 1:
            raise SendError("smtp: the backend did not send the message")

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not hide the real error
                pass
            self.connection = None
