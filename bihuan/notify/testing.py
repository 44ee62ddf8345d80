"""Real local endpoints for the notification channels, on 127.0.0.1 with ephemeral ports — a pytest plugin
(the root conftest loads it), so any app's tests and the system tests use the same servers:

- ``smtp_server``: an aiosmtpd SMTP server that keeps what it receives;
- ``endpoints``: an http.server that plays the WeCom robot, the DingTalk robot (checking the signature as
  DingTalk documents it) and the SMS gateway, checks each body format and answers like the real thing;
- ``notify_env``: the BIHUAN_SMTP_* / BIHUAN_SMS_* environment pointing at those servers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

DINGTALK_SECRET = "SECtest+secret/with=chars"  # characters that break an un-encoded signature
SMS_TOKEN = "sms-test-token"


class Endpoints:
    """Records every request; ``answers[path]`` queues (status, json) answers to give before succeeding."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: dict[str, deque] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def fail_next(self, path: str, *answers: tuple[int, dict]) -> None:
        self.answers.setdefault(path, deque()).extend(answers)

    def to(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def _handler(self):
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                record = {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers),
                          "json": body}
                with endpoints.lock:
                    endpoints.requests.append(record)
                    queued = endpoints.answers.get(parts.path)
                    canned = queued.popleft() if queued else None
                if canned is not None:
                    return self.answer(*canned)
                check = {"/wecom": check_wecom, "/dingtalk": check_dingtalk, "/sms": check_sms}.get(parts.path)
                if check is None:
                    return self.answer(404, {"error": "no such endpoint"})
                self.answer(*check(record))

            def answer(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def check_wecom(record) -> tuple[int, dict]:
    body = record["json"]
    ok = (isinstance(body, dict) and body.get("msgtype") == "markdown"
          and isinstance(body.get("markdown", {}).get("content"), str) and body["markdown"]["content"]
          and len(body["markdown"]["content"].encode()) <= 4096 and record["query"].get("key") == ["robot-key"])
    return (200, {"errcode": 0, "errmsg": "ok"}) if ok else (200, {"errcode": 40008, "errmsg": "invalid message"})


def dingtalk_sign(timestamp: str, secret: str) -> str:
    """DingTalk's documented check: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_dingtalk(record) -> tuple[int, dict]:
    query = record["query"]
    timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
    if query.get("access_token") != ["robot-token"]:
        return 200, {"errcode": 300001, "errmsg": "token is not exist"}
    if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
        return 200, {"errcode": 310000, "errmsg": "timestamp invalid"}
    # parse_qs has url-decoded the parameter; it must equal the base64 signature exactly.
    if not hmac.compare_digest(sign, dingtalk_sign(timestamp, DINGTALK_SECRET)):
        return 200, {"errcode": 310000, "errmsg": "sign not match"}
    body = record["json"]
    if not (isinstance(body, dict) and body.get("msgtype") == "text" and body.get("text", {}).get("content")):
        return 200, {"errcode": 40035, "errmsg": "invalid parameter"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def check_sms(record) -> tuple[int, dict]:
    if record["headers"].get("Authorization") != f"Bearer {SMS_TOKEN}":
        return 401, {"error": "unauthorized"}
    body = record["json"]
    if not (isinstance(body, dict) and set(body) == {"id", "phone", "text"}
            and all(isinstance(v, str) and v for v in body.values())):
        return 400, {"error": "bad request"}
    return 202, {"accepted": body["id"]}


@pytest.fixture
def endpoints():
    server = Endpoints()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.content)})
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture
def notify_env(monkeypatch, endpoints, smtp_server):
    monkeypatch.setenv("BIHUAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BIHUAN_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("BIHUAN_SMTP_USE_TLS", "false")
    monkeypatch.setenv("BIHUAN_MAIL_FROM", "闭环 <bihuan@yaodu.example.cn>")
    monkeypatch.setenv("BIHUAN_SMS_URL", endpoints.url("/sms"))
    monkeypatch.setenv("BIHUAN_SMS_TOKEN", SMS_TOKEN)
    monkeypatch.setenv("BIHUAN_NOTIFY_TIMEOUT", "5")
    return endpoints


@pytest.fixture
def robots(district, endpoints):
    """A WeCom robot of community A and a signed DingTalk robot of village B, pointing at ``endpoints``."""
    from bihuan.notify.actions import do_create_robot

    wecom = do_create_robot(unit=district.community_a, kind="wecom", name="鼓楼社区工作群",
                            webhook_url=endpoints.url("/wecom?key=robot-key"), acting_user=None)
    dingtalk = do_create_robot(unit=district.village_b, kind="dingtalk", name="东羊村防控群",
                               webhook_url=endpoints.url("/dingtalk?access_token=robot-token"),
                               secret=DINGTALK_SECRET, acting_user=None)
    return wecom, dingtalk
