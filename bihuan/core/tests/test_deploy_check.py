"""HTTPS by settings: with only the five production variables set, ``bihuan check --deploy`` finds nothing to say
(HSTS and the HTTPS redirect follow from BIHUAN_SECURE_COOKIES=1 behind a proxy), and the settings behave."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _production_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIHUAN_", "DATABASE_URL", "DJANGO_"))}
    env.update({
        "BIHUAN_SECRET_KEY": secrets.token_urlsafe(60),
        "BIHUAN_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
        "BIHUAN_ALLOWED_HOSTS": "bihuan.example.gov.cn",
        "BIHUAN_SECURE_COOKIES": "1",
        "BIHUAN_BEHIND_PROXY": "1",
    })
    env.update(extra)
    return env


def _check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bihuan", "check", "--deploy"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_prints_no_issue_with_the_five_production_variables():
    result = _check(_production_env())
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "no issues" in out, out
    assert "WARNING" not in out and "W0" not in out, out


def test_check_deploy_still_warns_when_https_is_not_promised():
    env = _production_env()
    del env["BIHUAN_SECURE_COOKIES"]
    out = _check(env)
    assert "W004" in out.stdout + out.stderr  # no HSTS without HTTPS: the check says so


def test_plain_http_is_redirected_and_https_answers_with_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy


@pytest.mark.parametrize("name", ["BIHUAN_HSTS_SECONDS", "BIHUAN_SSL_REDIRECT"])
def test_each_https_setting_is_its_own_to_tune(name):
    value = "0" if name == "BIHUAN_HSTS_SECONDS" else "0"
    out = _check(_production_env(**{name: value}))
    assert ("W004" if name == "BIHUAN_HSTS_SECONDS" else "W008") in out.stdout + out.stderr
