#!/usr/bin/env bash
# Makes sure what building fabric needs beyond Rust is there, and says how: OpenSSL's
# development files and pkg-config, which fabric-core's `tls` feature (on by default) builds
# against through native-tls and openssl-sys. Found by pkg-config, else installed from
# Debian's packages (libssl-dev, pkg-config) with apt-get; fails, loudly, when neither works.
set -euo pipefail

say() { printf 'ci/build-deps.sh: %s\n' "$*"; }
found() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; }

if found; then
  say "using OpenSSL $(pkg-config --modversion openssl) found by pkg-config"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "pkg-config finds no OpenSSL, and there is no apt-get here: install OpenSSL's"
  say "development files and pkg-config with this system's package manager (e.g."
  say "openssl-devel and pkgconf), or build without TLS (--no-default-features)"
  exit 1
fi
say "pkg-config finds no OpenSSL: installing libssl-dev and pkg-config from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq libssl-dev pkg-config >/dev/null
if found; then
  say "installed; using OpenSSL $(pkg-config --modversion openssl)"
else
  say "installed libssl-dev and pkg-config, but pkg-config still finds no OpenSSL"
  exit 1
fi
