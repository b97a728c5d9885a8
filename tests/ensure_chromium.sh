#!/bin/sh
# Chromium for the dashboard's browser test (tests/e2e/test_dashboard_browser.py): installs
# Debian's chromium with apt-get when /usr/bin/chromium is missing (Playwright drives it through
# executable_path; it cannot download a browser of its own here). Quick and silent when it is
# there. Never fails `make test`: without it that test skips and says why.
command -v chromium >/dev/null 2>&1 && exit 0
echo "chromium not found: installing Debian's chromium with apt-get ..."
sh "$(dirname "$0")/apt_install.sh" "the dashboard browser tests" chromium
