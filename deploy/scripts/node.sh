#!/bin/sh
# Node.js and npm for the JavaScript subscriber example's test (examples/js), from Debian.
#
#   deploy/scripts/node.sh        # prints node's path on stdout
#
# Installs the `nodejs` and `npm` packages with apt-get when node is missing (CI starts from a
# fresh machine). The example needs Node 18 or later (Debian 12 ships 18, Debian 13 ships 20).
set -eu
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm >&2
fi
bin=$(command -v node) || { echo "node.sh: node is still missing after apt-get install" >&2; exit 1; }
major=$("$bin" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "node.sh: node $major is too old (18 or later)" >&2; exit 1; }
echo "$bin"
