"""Playwright for Python driving Debian's chromium (never a downloaded browser).

Without /usr/bin/chromium the browser tests skip with the reason; under CI (CI=true) that is a failure.
Screenshots go to test-artifacts/ so a person can look at what the tests saw.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BIHUAN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it are
# ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"chromium not found at {CHROMIUM}: CI must install Debian's chromium")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield b
        b.close()


@pytest.fixture
def live_district(transactional_db):
    from bihuan.testing import build_base_district

    return build_base_district()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take


def login(page, base_url: str, username: str, password: str):
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    # the sign-in form posts and redirects: wait for the page it lands on, not for the network to fall idle
    # (pages that poll never do for long)
    with page.expect_navigation(wait_until="load"):
        page.click("button[type=submit]")
