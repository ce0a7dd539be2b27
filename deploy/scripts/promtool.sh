#!/bin/sh
# promtool from Debian's `prometheus` package: checks and unit-tests the alerting rules and the
# dashboard's queries (tests/integration/test_prometheus_rules.py).
#
#   deploy/scripts/promtool.sh check rules deploy/prometheus/gongkai-rules.yaml
#
# Installs the package with apt-get if no promtool is found (CI starts from a fresh machine);
# only the binary is used, the Prometheus server it brings is not started.
set -eu
if ! command -v promtool >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: the package's service must not start on a test machine.
  if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
fi
promtool "$@"
