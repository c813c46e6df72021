"""Browser tests: the real api (uvicorn, in a thread) on a temporary SQLite database, driven by
Playwright through Debian's chromium.

Chromium is installed by `scripts/ensure-envs.sh --for-tests` (`apt-get install -y chromium`), or
named by RELANCE_CHROMIUM; without it these tests fail with a clear message rather than being
skipped.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import sessionmaker

from relance.runtime.doctor import find_chromium

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    found = find_chromium()
    if not found:
        pytest.fail(
            "Chromium is missing: the browser tests drive Debian's chromium. Install it with "
            "`apt-get update && apt-get install -y chromium`, or set RELANCE_CHROMIUM.",
            pytrace=False,
        )
    return Path(found)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The console on http://127.0.0.1:<port>, seeded; fake gateway and fake Rasa installed."""
    import uvicorn

    from relance.conversations import ports
    from relance.db import session as db_session
    from relance.db.base import Base
    from relance.settings import get_settings
    from tests.browser.seed import seed
    from tests.console.conftest import FakeGateway, FakeRasa

    root = tmp_path_factory.mktemp("browser")
    port = _free_port()
    env = {
        "ENVIRONMENT": "test",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SECRET_KEY": "browser-secret-key",
        "RASA_URL": "http://127.0.0.1:9",
        "RASA_TIMEOUT_SECONDS": "1",
        "VAR_DIR": str(root / "var"),
        "DATABASE_URL": "",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        import relance.db.models  # noqa: F401

        engine = db_session.make_engine(f"sqlite:///{root / 'console.db'}")
        Base.metadata.create_all(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        mp.setattr(db_session, "get_sessionmaker", lambda: factory)
        with factory.begin() as session:
            ids = seed(session)
        gateway, rasa = FakeGateway(), FakeRasa(replies=["Rebonjour ! Où en étions-nous ?"])
        mp.setattr(ports, "_gateway", gateway)
        mp.setattr("console.casework.client_from_settings", lambda: rasa)

        from relance.app import create_app

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(get_settings()),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        try:
            yield {
                "url": f"http://127.0.0.1:{port}",
                "ids": ids,
                "factory": factory,
                "gateway": gateway,
                "rasa": rasa,
            }
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, live_server: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $RELANCE_SCREENSHOTS (e.g. /tmp/screens) or a temporary folder."""
    target = Path(os.environ.get("RELANCE_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    target.mkdir(parents=True, exist_ok=True)
    return target


SCREENSHOT_ATTEMPTS = 3


def screenshot(page: Any, path: Path) -> None:
    """Save a full-page screenshot, retrying Chromium's transient capture failure.

    Headless Chromium sometimes answers Page.captureScreenshot with "Unable to capture
    screenshot" when the compositor has no frame ready yet (seen in CI on the phone-sized portal
    pages, crbug 714058). That says nothing about the page under test, so the capture is retried
    after the next animation frame; any other error, or the same one three times, still fails.
    """
    from playwright.sync_api import Error

    for attempt in range(1, SCREENSHOT_ATTEMPTS + 1):
        try:
            page.screenshot(path=str(path), full_page=True)
            return
        except Error as error:
            if "Unable to capture screenshot" not in str(error) or attempt == SCREENSHOT_ATTEMPTS:
                raise
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(null)))")
            page.wait_for_timeout(200 * attempt)


def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
