"""Chromium driven by Selenium, for the console's browser tests and screenshots.

Debian's ``chromium`` and ``chromium-driver`` packages (``scripts/ensure-chromium.sh`` installs them);
the driver's path is given, so Selenium Manager never downloads one. Headless, with the features
that reach out to the network switched off (in a closed network their connections are refused and
logged), a fresh profile per browser, and the browser's console log kept for the tests to read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 900)

# What a page must do before it counts as drawn: every canvas of the page has a Chart.js chart with
# at least one data point, a size, and pixels that differ from a blank canvas of the same size.
CHARTS_DRAWN = """
const canvases = [...document.querySelectorAll('main canvas')];
return canvases.map((canvas) => {
  const chart = window.Chart && window.Chart.getChart(canvas);
  const blank = document.createElement('canvas');
  blank.width = canvas.width; blank.height = canvas.height;
  return {
    id: canvas.id,
    chart: !!chart,
    points: chart ? chart.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0) : 0,
    width: canvas.width, height: canvas.height,
    painted: canvas.width > 0 && canvas.height > 0 && canvas.toDataURL() !== blank.toDataURL(),
  };
});
"""


@contextmanager
def chromium(window: tuple[int, int] = WINDOW) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: run scripts/ensure-chromium.sh (Debian: chromium, chromium-driver)"
            )
    profile = tempfile.mkdtemp(prefix="mlops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """The browser console's SEVERE entries since the last call (reading the log empties it)."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def wait_for_page(driver: Any, page: str, timeout_s: float = 60.0) -> None:
    """Until the console has rendered ``page`` (its ``main`` says which, and is no longer busy) and
    every chart on it is drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    def rendered(d: Any) -> bool:
        return bool(
            d.execute_script(
                "const m = document.getElementById('main');"
                "return m && m.dataset.page === arguments[0] && !m.hasAttribute('aria-busy')"
                " && !m.querySelector('p.loading');",
                page,
            )
        )

    from selenium.common.exceptions import TimeoutException

    try:
        WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(rendered)
        WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
            lambda d: all(c["chart"] and c["painted"] for c in d.execute_script(CHARTS_DRAWN))
        )
    except TimeoutException:
        state = driver.execute_script(
            "const m = document.getElementById('main');"
            "return {url: location.href, page: m.dataset.page, busy: m.hasAttribute('aria-busy'),"
            " text: m.innerText.slice(0, 300)};"
        )
        raise TimeoutException(
            f"page {page!r} not drawn within {timeout_s:.0f}s: {state}; charts {driver.execute_script(CHARTS_DRAWN)}"
        ) from None


def sign_in(driver: Any, console_url: str, token: str, timeout_s: float = 60.0) -> None:
    """Open the console, type the token into the sign-in form and press Enter (as a keyboard user)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(console_url)
    driver.execute_script("sessionStorage.clear()")  # signed out, whoever used this browser before
    driver.refresh()
    box = WebDriverWait(driver, timeout_s).until(ec.element_to_be_clickable((By.ID, "token")))
    box.send_keys(token, Keys.ENTER)
    WebDriverWait(driver, timeout_s).until(ec.visibility_of_element_located((By.ID, "sign-out")))
