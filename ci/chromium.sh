#!/usr/bin/env bash
# Debian's headless Chromium for the gateway's live-page test (fabric-gateway/tests/page.rs),
# installed when missing. Says what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v chromium >/dev/null 2>&1; then
  echo "using $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing and there is no apt-get to install it: install Debian's chromium" >&2
  exit 1
fi
echo "chromium is missing: installing Debian's chromium package with apt-get"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
echo "installed $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
