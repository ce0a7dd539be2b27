#!/bin/sh
# Headless Chromium for the console's browser tests, from the Debian package.
#
#   deploy/scripts/chromium.sh        # prints the browser's path on stdout
#
# Installs the `chromium` package with apt-get if /usr/bin/chromium is missing (CI starts from
# a fresh machine); the tests drive it with Playwright for Python, never `playwright install`:
# a browser build downloaded by a tool of its own is not something this project can fetch.
set -eu
bin=/usr/bin/chromium
# Noto CJK too: without a Chinese font the pages (and their committed screenshots) show boxes.
font=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
if [ ! -x "$bin" ] || [ ! -f "$font" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >&2
fi
[ -x "$bin" ] || { echo "chromium.sh: $bin is still missing after apt-get install" >&2; exit 1; }
echo "$bin"
