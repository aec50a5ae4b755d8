"""Screenshots of the web console for the docs: ``python -m mlops.console_screenshots [OUT_DIR]``.

Starts a fresh local cloud, builds the console's scenario through real calls
(``mlops.console_scenario``), signs in to the console in headless Chromium as an approver and saves
the main pages as PNGs (1280x900) into ``docs/console/`` (or OUT_DIR). About two minutes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mlops import PROJECT_DIR, browser, console_scenario
from mlops.localcloud import LocalCloud, free_port

OUT = PROJECT_DIR / "docs" / "console"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    out.mkdir(parents=True, exist_ok=True)
    log = PROJECT_DIR / ".mlops" / "console-screenshots-functions.log"
    log.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with LocalCloud(port=free_port(), api_port=free_port(), function_log=log) as cloud:
        api = str(cloud.api_url)
        scenario = console_scenario.run(api, say=lambda what: print(f"  {what}", flush=True))
        pages = {
            "overview": ("", "overview"),
            "dataset": (f"datasets/{console_scenario.DATASET}", "datasets"),
            "upload": (f"uploads/{scenario.uploads['drifted']}", "uploads"),
            "upload-issues": (f"uploads/{scenario.uploads['malformed']}", "uploads"),
            "model": (f"models/{console_scenario.DATASET}", "models"),
            "runs": ("runs", "runs"),
        }
        with browser.chromium() as driver:
            browser.sign_in(driver, f"{api}/console", scenario.tokens["approver"])
            for name, (route, page) in pages.items():
                driver.get(f"{api}/console#/{route}")
                browser.wait_for_page(driver, page)
                target = out / f"{name}.png"
                driver.save_screenshot(str(target))
                print(
                    f"  {target.relative_to(PROJECT_DIR) if target.is_relative_to(PROJECT_DIR) else target}"
                )
            errors = browser.console_errors(driver)
    print(f"done in {time.monotonic() - started:.0f}s")
    if errors:
        print(f"the browser's console has errors: {errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
