#!/bin/sh
# What the printable forms (Attachment 1 and 2 as PDF) need beside Python, from Debian:
#   fonts-noto-cjk   the Chinese font the PDFs embed (Noto Sans CJK SC)
#   poppler-utils    pdftoppm and pdftotext, with which the tests look at and read them back
#
#   deploy/scripts/pdf-tools.sh        # prints the font's path on stdout
#
# Installs with apt-get whatever is missing (CI starts from a fresh machine); never skipped.
set -eu
font=/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
if [ ! -f "$font" ] || ! command -v pdftoppm >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends fonts-noto-cjk poppler-utils fontconfig >&2
fi
[ -f "$font" ] || { echo "pdf-tools.sh: $font is still missing after apt-get install" >&2; exit 1; }
command -v pdftoppm >/dev/null 2>&1 || { echo "pdf-tools.sh: pdftoppm is still missing" >&2; exit 1; }
echo "$font"
