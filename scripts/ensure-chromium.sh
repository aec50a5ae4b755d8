#!/usr/bin/env bash
# The browser tests (tests/e2e/test_console_browser.py) drive Debian's Chromium through its
# chromedriver. Install both when they are missing; do nothing when they are there.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "the console's browser tests need Chromium and chromedriver at /usr/bin (Debian: chromium, chromium-driver)" >&2
    exit 1
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then
    sudo=(sudo)
fi
echo "installing chromium and chromium-driver (the console's browser tests)"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q chromium chromium-driver; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q chromium chromium-driver
fi
