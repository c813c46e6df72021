"""Issue 17.7: the console works under its Content-Security-Policy in a real browser: no CSP
violation on any page, htmx loaded and polling, the stylesheet (and the dashboard colours that
used to be inline styles) applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relance.db.models import Message
from tests.browser.conftest import screenshot, sign_in
from tests.browser.seed import ADMIN, COLLECTOR, PASSWORD
from tests.browser.test_console_browser import PAGES

pytestmark = pytest.mark.browser


def _watch(page: Any) -> list[str]:
    """Collects CSP reports and script errors the page raises."""
    problems: list[str] = []

    def on_console(msg: Any) -> None:
        if "Content Security Policy" in msg.text:
            problems.append(msg.text)

    def on_response(response: Any) -> None:
        # a blocked or missing script / stylesheet / htmx request; the browser's own favicon
        # probe and the forbidden page's 403 are expected
        expected = response.status == 403 or response.url.endswith("/favicon.ico")
        if response.status >= 400 and not expected:
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def test_every_console_page_runs_under_the_csp_without_violation(
    browser: Any, live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, ids = live_server["url"], live_server["ids"]
    pages: dict[str | None, tuple[Any, list[str]]] = {}
    for name, who, path in PAGES:
        if who not in pages:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            problems = _watch(page)
            if who:
                sign_in(page, base, who, PASSWORD)
            pages[who] = (page, problems)
        page, problems = pages[who]
        response = page.goto(base + path.format(**ids))
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.htmx") == "object", name
        # the stylesheet applied: the top bar / login card is not unstyled
        assert page.evaluate("getComputedStyle(document.body).fontFamily") != "", name
        assert not problems, (name, problems)
    dashboard = pages[ADMIN][0]
    dashboard.goto(f"{base}/console/dashboard")
    colour = dashboard.evaluate(
        "getComputedStyle(document.querySelector('.legend .swatch-kept')).backgroundColor"
    )
    assert colour == "rgb(31, 138, 76)"  # #1f8a4c, from console.css, not an inline style
    screenshot(dashboard, screens_dir / "csp-dashboard.png")
    for page, _problems in pages.values():
        page.context.close()


def test_htmx_polling_and_posts_work_under_the_csp(
    page: Any, live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, ids = live_server["url"], live_server["ids"]
    problems = _watch(page)
    sign_in(page, base, COLLECTOR, PASSWORD)
    page.goto(f"{base}/console/conversations/{ids['conv-B-2002']}")
    with live_server["factory"].begin() as session:
        session.add(
            Message(
                conversation_id=ids["conv-B-2002"],
                direction="inbound",
                channel="whatsapp",
                author="debtor",
                status="held",
                body="Message arrivé pendant la CSP",
            )
        )
    # The transcript fragment is polled by htmx every 4 s (hx-trigger, no eval needed).
    page.wait_for_selector("text=Message arrivé pendant la CSP", timeout=12_000)
    screenshot(page, screens_dir / "csp-conversation.png")
    assert not problems, problems
