#!/usr/bin/env bash
# Make sure Debian's Chromium and chromedriver are installed for the API docs browser test
# (billing_project/tests/test_api_docs_browser.py); a test tool's own browser download does not work here.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "Chromium or chromedriver missing; installing chromium chromium-driver" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium chromium-driver
