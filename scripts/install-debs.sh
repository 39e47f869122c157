#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks talk to, when missing.
# Prints nothing when all are installed. Services are never started by the
# package scripts: tests and benchmarks start their own instances on loopback
# ports (PostgreSQL is started by .ci/run).
set -euo pipefail

# nginx-light keeps the upstream keepalive module (it is built into every
# nginx flavour); the benchmarks use it.
pkgs=(prometheus prometheus-alertmanager haproxy nginx-light caddy nghttp2-client chromium postgresql)

missing() {
  local p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t todo < <(missing)
[ ${#todo[@]} -eq 0 ] && exit 0

echo "install-debs: installing ${todo[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Keep package maintainer scripts from starting daemons (nginx on :80 and so
# on): invoke-rc.d and deb-systemd-invoke obey policy-rc.d's "101: forbidden".
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ $created_policy -eq 1 ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${todo[@]}" >/dev/null

mapfile -t still < <(missing)
if [ ${#still[@]} -gt 0 ]; then
  echo "install-debs: still missing after install: ${still[*]}" >&2
  exit 1
fi
