#!/usr/bin/env bash
# Make sure GNU gettext (msgfmt, xgettext) is installed: `manage.py makemessages` and `compilemessages`
# need it (docs/i18n.md). The compiled catalogs are committed, so only changing a translation needs it.
set -euo pipefail

if command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1; then
  exit 0
fi
echo "GNU gettext missing; installing gettext" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y gettext
