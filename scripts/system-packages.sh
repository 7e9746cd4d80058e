#!/usr/bin/env bash
# The Debian packages `make test` needs beside the venv: the real Prometheus tools the tests run,
# libfaketime for the tests that pin the exporter's and the simulator's clock, and headless chromium
# with its driver for the landing page's browser test. As root with apt-get
# (CI, a fresh container) they are installed; otherwise the exact install line is printed.
set -euo pipefail

# command -> the Debian package that ships it
declare -A PACKAGE=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [faketime]=faketime
  [chromium]=chromium
  [chromedriver]=chromium-driver
)

missing=()
for command in "${!PACKAGE[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${PACKAGE[$command]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
packages=${packages% }

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages the tests need: $packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
  exit 0
fi
echo "make test needs Debian packages that are not installed. Install them with:" >&2
echo "  sudo apt-get install -y --no-install-recommends $packages" >&2
exit 1
