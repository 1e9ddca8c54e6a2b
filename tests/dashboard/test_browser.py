"""The dashboard in a real browser: ``rccr dashboard`` serving, Debian's Chromium driving.

Every page is visited, one control is changed on each, and the test waits for the result,
then checks that Streamlit shows no exception and saves a screenshot (to a temporary
folder, or to ``$RCCR_DASHBOARD_SHOTS`` when set). Playwright never downloads a browser
here: it drives ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` does it).
Without it the test is skipped, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1400


def _need_chromium() -> None:
    if CHROMIUM.is_file():
        return
    message = f"{CHROMIUM} not found: apt-get install chromium (as .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; under CI the browser test must run")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rccr dashboard`` over the fixture runs on a free port; yields its URL."""
    _need_chromium()
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    command = [sys.executable, "-m", "rccr", "dashboard", "--runs", str(runs_root)]
    with open(log, "w") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the dashboard exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("RCCR_DASHBOARD_SHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _settle(page, text: str, timeout: float = 180_000) -> None:
    """Wait until ``text`` is on the page and the script has stopped running."""
    page.get_by_text(text).first.wait_for(timeout=timeout)
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=timeout)


def _until(page, act: Callable[[], None], text: str) -> None:
    """Do ``act`` until ``text`` shows (a click can land while the page re-renders)."""
    for attempt in range(3):
        try:
            act()
            _settle(page, text, timeout=30_000 * (attempt + 1))
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def _select(page, label: str, option: str, expect: str) -> None:
    def act() -> None:
        box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
        box.scroll_into_view_if_needed()  # the menu closes if the page scrolls as it opens
        page.wait_for_timeout(500)
        box.click()
        page.get_by_role("option", name=option, exact=True).click(timeout=10_000)

    _until(page, act, expect)


def _radio(page, label: str, option: str, expect: str) -> None:
    group = page.get_by_test_id("stRadio").filter(has_text=label)
    _until(page, lambda: group.get_by_text(option, exact=True).click(), expect)


def _toggle(page, label: str, expect: str) -> None:
    toggle = page.get_by_test_id("stCheckbox").filter(has_text=label)
    _until(page, lambda: toggle.click(), expect)


PAGES: dict[str, tuple[str, str, Callable]] = {
    # url path, text of the page's last element, one control changed and its visible effect
    "runs": ("", "differ", lambda page: _select(page, "Run", "rccr", "rccr/config.yaml")),
    "runs_by_name": ("runs", "differ", lambda page: None),  # /runs: the same page
    "training": (
        "training",
        "multiplies it",
        lambda page: _toggle(page, "Refresh every", "Following: refreshed on its own"),
    ),
    "predictions": (
        "predictions",
        "rows sum to 100",
        lambda page: _select(page, "Compare with", "rccr", "rccr iter_4"),
    ),
    "regions": (
        "regions",
        "negatives from the clean target (teacher)",
        lambda page: _radio(page, "Negative sampling", "random", "negative sampling 'random'"),
    ),
    "tsne": (
        "tsne",
        "features shown",
        lambda page: _radio(page, "Colour by", "domain", "coloured by domain"),
    ),
    "health": (
        "health",
        "What each diagnostic measures",
        lambda page: _until(
            page,
            lambda: page.get_by_text("What each diagnostic measures").click(),
            "has the definitions",
        ),
    ),
    "iou": (
        "iou",
        "Download every checkpoint",
        lambda page: _select(page, "Checkpoint", "iter_2", "Per-class IoU at iter_2"),
    ),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_browser__every_page_and_one_control(
    server: str, browser: object, shots: Path, name: str
) -> None:
    path, last, change = PAGES[name]
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(f"{server}/{path}")
        _settle(page, last)
        change(page)
        page.get_by_test_id("stMain").evaluate("main => main.scrollTo(0, 0)")
        height = page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
        page.set_viewport_size({"width": WIDTH, "height": min(int(height) + 40, 8000)})
        time.sleep(1)  # charts re-lay out to the new size
        page.screenshot(path=str(shots / f"{name}.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0  # a local tool
    finally:
        page.close()


def test_browser__markup_in_the_url_is_text_not_an_image_or_a_link(
    server: str, browser: object
) -> None:
    """``?run=![x](http://host/p.png)`` used to make the browser fetch the image."""
    from urllib.parse import quote

    markup = "![x](http://127.0.0.1:9/p.png) [link](http://127.0.0.1:9/)"
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(f"{server}/iou?run={quote(markup)}")
        _settle(page, "Download every checkpoint")
        shown = page.get_by_test_id("stMain").inner_text().replace("\u200b", "")
        assert markup in shown  # as typed (bare URLs carry an invisible break)
        assert page.locator('img[src*="127.0.0.1:9"]').count() == 0
        assert page.locator('a[href*="127.0.0.1:9"]').count() == 0
    finally:
        page.close()
