#!/usr/bin/env bash
# Installs the Debian packages cors-proxy needs when they are missing.
# Usage: scripts/ensure-deps.sh [build|test|bench]
set -euo pipefail
what=${1:-build}
need=(libcurl4-openssl-dev pkg-config curl)
case "$what" in
  test) need+=(chromium python3 python3-yaml python3-hpack openssl) ;;
  bench) need+=(wrk nginx-light golang-go golang-github-rs-cors-dev util-linux openssl nghttp2-client) ;;
esac
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
