#!/usr/bin/env bash
# Installs the build and test dependencies from Debian 12's archive (idempotent).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config ccache
      libhwy-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      curl chromium)  # curl: bench/server_load.sh polls /health; chromium: tests/eval_report_test renders report.html
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "akv: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
