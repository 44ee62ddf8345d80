import pytest

from bihuan.env import ConfigError
from bihuan.notify import conf


def test_without_smtp_or_sms_settings_those_channels_are_off(monkeypatch):
    for name in ("BIHUAN_SMTP_HOST", "BIHUAN_SMS_URL"):
        monkeypatch.delenv(name, raising=False)
    config = conf.load()
    assert config.smtp is None and config.sms is None
    assert (config.max_attempts, config.retry_base, config.retry_cap, config.robot_per_minute) == (8, 30, 3600, 20)


def test_smtp_settings_are_parsed(monkeypatch):
    monkeypatch.setenv("BIHUAN_SMTP_HOST", "smtp.example.cn")
    monkeypatch.setenv("BIHUAN_SMTP_USE_SSL", "true")
    monkeypatch.setenv("BIHUAN_MAIL_FROM", "闭环 <bihuan@example.cn>")
    smtp = conf.load().smtp
    assert (smtp.host, smtp.port, smtp.use_ssl, smtp.use_tls, smtp.sender_domain) == (
        "smtp.example.cn", 465, True, False, "example.cn")


@pytest.mark.parametrize("env", [
    {"BIHUAN_NOTIFY_MAX_ATTEMPTS": "many"},
    {"BIHUAN_NOTIFY_MAX_ATTEMPTS": "0"},
    {"BIHUAN_ROBOT_PER_MINUTE": "30"},
    {"BIHUAN_SMTP_HOST": "smtp.example.cn"},  # no BIHUAN_MAIL_FROM
    {"BIHUAN_SMTP_HOST": "smtp.example.cn", "BIHUAN_MAIL_FROM": "a@b.cn", "BIHUAN_SMTP_PORT": "70000"},
    {"BIHUAN_SMTP_HOST": "smtp.example.cn", "BIHUAN_MAIL_FROM": "a@b.cn", "BIHUAN_SMTP_USE_TLS": "true",
     "BIHUAN_SMTP_USE_SSL": "true"},
    {"BIHUAN_SMTP_HOST": "smtp.example.cn", "BIHUAN_MAIL_FROM": "a@b.cn", "BIHUAN_SMTP_USE_TLS": "maybe"},
    {"BIHUAN_SMS_URL": "https://sms.example.cn/send"},  # no token
    {"BIHUAN_SMS_URL": "ftp://sms.example.cn", "BIHUAN_SMS_TOKEN": "t"},
])
def test_malformed_settings_are_refused(monkeypatch, env):
    for name in ("BIHUAN_SMTP_HOST", "BIHUAN_SMS_URL", "BIHUAN_MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError):
        conf.load()
