#!/usr/bin/env bash
# Installs the system packages the test suite needs, from Debian, when missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli    >/dev/null || need+=(redis-tools)
command -v wat2wasm    >/dev/null || need+=(wabt)
command -v node        >/dev/null || need+=(nodejs)
command -v chromium    >/dev/null || need+=(chromium)
command -v python3     >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
