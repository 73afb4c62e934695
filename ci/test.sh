#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, docs, and every test against a real
# RabbitMQ (unit, broker, macro compile-fail and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "broker"
bash ci/broker.sh

step "python peer (amqp-fabric) for the interoperability and conformance tests"
python3 -c "import amqp_fabric" 2>/dev/null || {
  echo "installing amqp-fabric from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check amqp-fabric
}
python3 -c "import amqp_fabric; print('using amqp-fabric from', amqp_fabric.__file__)"
# The conformance suite (examples/tests/conformance.rs) runs amqp-fabric's own pytest suite.
python3 -c "import pytest, pytest_asyncio" 2>/dev/null || {
  echo "installing pytest and pytest-asyncio from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check pytest==8.4.2 pytest-asyncio==1.2.0
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo test (unit, broker, trybuild and doc tests)"
cargo test --workspace --locked
