"""The web console in a real browser (Debian's Chromium through Selenium) against the local cloud,
after a demo-like scenario made through real calls (scripts/mlops/console_scenario.py): uploads with
their reports and drift, two training runs, a champion and a version waiting for approval.

Every page is opened signed in as a viewer and every chart on it must have drawn (a Chart.js chart
with data, a canvas with a size and pixels); an approver approves the waiting version with a reason
and a confirmation, and the model page's audit trail shows it. Any error in the browser's console
fails the test. Waits end on what the page shows; their bounds only stop a hang."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from mlops import browser, console_scenario
from mlops.console_scenario import DATASET, Scenario
from tests.support import wait_until

pytestmark = pytest.mark.slow
WAIT_S = 90.0  # a hang guard for a busy two-core machine, never a pace


@pytest.fixture(scope="module")
def scenario(local_cloud) -> Scenario:
    return console_scenario.run(str(local_cloud.api_url))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser.chromium() as driver:
        yield driver


@pytest.fixture
def driver(chromium) -> Iterator[Any]:
    browser.console_errors(chromium)  # what an earlier test left is that test's
    yield chromium
    errors = browser.console_errors(chromium)
    assert not errors, f"the browser's console has errors: {errors}"


def _open(driver: Any, scenario: Scenario, route: str, page: str) -> None:
    driver.get(f"{scenario.api}/console#/{route}")
    browser.wait_for_page(driver, page, WAIT_S)


def _main_text(driver: Any) -> str:
    return str(driver.execute_script("return document.getElementById('main').innerText"))


def _charts(driver: Any) -> list[dict[str, Any]]:
    return list(driver.execute_script(browser.CHARTS_DRAWN))


def _assert_drawn(driver: Any, *ids: str) -> None:
    charts = {c["id"]: c for c in _charts(driver)}
    for chart_id in ids:
        chart = charts.get(chart_id)
        assert chart is not None, f"no chart {chart_id} on the page: {sorted(charts)}"
        assert chart["chart"] and chart["points"] > 0, chart
        assert chart["width"] > 0 and chart["height"] > 0 and chart["painted"], chart


def test_the_page_and_its_files_are_served_by_the_api_itself(local_cloud):
    api = str(local_cloud.api_url)
    with urllib.request.urlopen(f"{api}/console", timeout=30) as answer:
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    with urllib.request.urlopen(f"{api}/console/assets/chart.umd.min.js", timeout=30) as answer:
        assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert answer.read(40).startswith(b"/*!\n * Chart.js v4.")
    for path in ("/console/assets/..%2Fapp.py", "/console/assets/secrets.txt"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{api}{path}", timeout=30)
        assert refused.value.code == 404


def test_a_viewer_signs_in_and_every_page_draws_its_charts(driver, scenario):
    browser.sign_in(driver, f"{scenario.api}/console", scenario.tokens["viewer"], WAIT_S)
    assert "Signed in as vera (viewer)" in driver.find_element("id", "who").text

    _open(driver, scenario, "", "overview")
    text = _main_text(driver)
    assert "breast_cancer" in text and "Recent uploads" in text and "Queues and dead-letter queues" in text
    # Verdicts are words with a symbol, not colour alone.
    assert "✗ invalid" in text and "⚠ drifted" in text and "✓ valid" in text
    _assert_drawn(driver, "chart-uploads")

    _open(driver, scenario, f"datasets/{DATASET}", "datasets")
    text = _main_text(driver)
    assert "Per-feature drift over time" in text and "mean_radius" in text and "Contract" in text
    _assert_drawn(driver, "chart-drift")

    _open(driver, scenario, f"uploads/{scenario.uploads['malformed']}", "uploads")
    text = _main_text(driver)
    assert "FORMULA_INJECTION" in text and "remove the leading character" in text  # the issue and its fix
    assert "Column statistics" in text

    _open(driver, scenario, f"uploads/{scenario.uploads['drifted']}", "uploads")
    text = _main_text(driver)
    assert "Drift per column" in text and "⚠ drifted" in text
    _assert_drawn(driver, "chart-upload-drift")

    _open(driver, scenario, f"models/{DATASET}", "models")
    text = _main_text(driver)
    assert f"v{scenario.champion}" in text and "Gate decisions" in text and "Audit trail" in text
    assert "Lineage" in text and scenario.uploads["day 1"][:10] in text  # back to the uploads
    assert "Approve" not in text  # a viewer gets no buttons
    _assert_drawn(driver, "chart-metrics", "chart-champions")

    _open(driver, scenario, "runs", "runs")
    text = _main_text(driver)
    assert all(run_id in text for run_id in scenario.runs)
    _assert_drawn(driver, "chart-runs")


def test_a_dead_letter_queue_that_is_not_empty_is_a_warning_on_the_overview(driver, scenario):
    from chalicelib import bootstrap
    from chalicelib.adapters import aws
    from chalicelib.settings import dlq_name

    dlq = dlq_name(bootstrap.settings().ingest_queue)
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=dlq)["QueueUrl"], MessageBody="{}")

    browser.sign_in(driver, f"{scenario.api}/console", scenario.tokens["viewer"], WAIT_S)
    _open(driver, scenario, "", "overview")
    warning = driver.find_element("css selector", "main .warnings").text
    assert f"{dlq}: 1 message(s) in the dead-letter queue" in warning
    assert "⚠ 1 (not empty)" in _main_text(driver)  # in the queues table too, as words


def test_values_from_the_api_are_shown_as_text_never_as_markup(driver, scenario):
    from chalicelib import bootstrap
    from chalicelib.adapters import aws
    from chalicelib.ingest import upload_id_for

    settings = bootstrap.settings()
    key = f"incoming/{DATASET}/<img src=x onerror=alert(1)><b>bold</b>.csv"
    put = aws.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=b"not,a\ncsv")
    upload = upload_id_for(settings.data_bucket, key, put["VersionId"])
    assert wait_until(lambda: bootstrap.uploads().get(upload), WAIT_S)

    browser.sign_in(driver, f"{scenario.api}/console", scenario.tokens["viewer"], WAIT_S)
    _open(driver, scenario, f"uploads/{upload}", "uploads")
    assert "<img src=x onerror=alert(1)><b>bold</b>.csv" in _main_text(driver)
    assert driver.execute_script("return document.querySelectorAll('main img, main b').length") == 0


def test_an_approver_approves_the_waiting_version_and_the_audit_trail_shows_it(driver, scenario):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    version = scenario.pending
    browser.sign_in(driver, f"{scenario.api}/console", scenario.tokens["approver"], WAIT_S)
    _open(driver, scenario, f"models/{DATASET}", "models")
    assert "approved the console's approval" not in _main_text(driver)

    # Keyboard only: the button takes Enter, the dialog asks a reason, Enter on Confirm sends it.
    button = driver.find_element(By.XPATH, f"//main//button[normalize-space()='Approve v{version}']")
    button.send_keys(Keys.ENTER)
    dialog = WebDriverWait(driver, WAIT_S).until(ec.visibility_of_element_located((By.ID, "confirm")))
    assert f"Approve v{version}" in dialog.text
    reason = driver.find_element(By.ID, "confirm-reason")
    assert driver.switch_to.active_element == reason  # focus moved into the dialog
    driver.find_element(By.ID, "confirm-ok").send_keys(Keys.ENTER)
    assert "at least 3 characters" in driver.find_element(By.ID, "confirm-error").text  # a reason is required
    reason.send_keys("approved the console's approval: gates and holdout checked")
    driver.find_element(By.ID, "confirm-ok").send_keys(Keys.ENTER)

    WebDriverWait(driver, WAIT_S).until(ec.invisibility_of_element_located((By.ID, "confirm")))
    browser.wait_for_page(driver, "models", WAIT_S)
    WebDriverWait(driver, WAIT_S).until(lambda d: "approved the console's approval" in _main_text(d))
    rows = driver.find_elements(By.XPATH, "//h2[.='Audit trail']/following-sibling::table[1]/tbody/tr")
    newest = rows[0].text
    assert (
        "alice (approver)" in newest
        and f"v{version}" in newest
        and "approved the console's approval" in newest
    )
    assert f"Approve v{version}" not in _main_text(driver)  # nothing waits any more
