#!/usr/bin/env bash
# Headless Chromium for the report page's browser tests (tests/test_page.py): Debian's `chromium` and
# `chromium-driver` packages, driven over WebDriver by tests/browser.py (no Python package, no browser
# download). Idempotent: when both are on PATH it does nothing and needs no network.
#
# Where they cannot be installed (no apt-get, no root, no package) it says so and exits 0: the browser
# tests then skip with that reason. RIDGEBENCH_BROWSER_REQUIRED=1 makes that an error (exit 1).
set -euo pipefail

have() {
    command -v chromedriver >/dev/null 2>&1 &&
        { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1
}
give_up() {
    echo "ridgebench: no headless Chromium ($1); the browser tests will skip" >&2
    [ "${RIDGEBENCH_BROWSER_REQUIRED:-0}" = 1 ] && exit 1
    exit 0
}

if have; then
    echo "ridgebench: chromium and chromedriver already installed" >&2
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || give_up "no apt-get: install chromium and its chromedriver by hand"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || give_up "not root and no sudo"
    SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || give_up "apt-get update failed"
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null ||
    give_up "apt-get install chromium chromium-driver failed"
have || give_up "installed, but chromium or chromedriver is not on PATH"
echo "ridgebench: installed $(chromium --version 2>/dev/null || echo chromium) and chromedriver" >&2
