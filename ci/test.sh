#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, docs, and every test against a real
# RabbitMQ (unit, broker, TLS, macro compile-fail and doc tests). The `tls` feature is on by
# default, so every step builds and tests it; fabric-core without it is linted and its unit
# tests run too. The `metrics` feature (on in the examples, so in every workspace step) is
# linted and its test run on fabric-core alone as well.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "build prerequisites (OpenSSL for the tls feature)"
bash ci/build-deps.sh

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

# The gateway's tests validate its OpenAPI document with openapi-spec-validator.
python3 -c "import openapi_spec_validator" 2>/dev/null || {
  echo "installing openapi-spec-validator from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator==0.9.0
}

step "headless Chromium for the gateway's live-page test"
bash ci/chromium.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings (default features: tls)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy -D warnings, fabric-core without default features (no tls)"
cargo clippy -p fabric-core --no-default-features --all-targets --locked -- -D warnings

step "cargo clippy -D warnings, fabric-core and the bench with the metrics feature"
cargo clippy -p fabric-core --features metrics --all-targets --locked -- -D warnings
cargo clippy -p fabric-bench --features metrics --all-targets --locked -- -D warnings
# The examples crate turns on fabric-core's `opentelemetry` feature, so the workspace steps
# build fabric-core with it; fabric-core alone is linted with its default features, with
# `tracing` alone and with `opentelemetry`.
step "cargo clippy -D warnings, fabric-core with default features, tracing alone, opentelemetry"
cargo clippy -p fabric-core --all-targets --locked -- -D warnings
cargo clippy -p fabric-core --features tracing --all-targets --locked -- -D warnings
cargo clippy -p fabric-core --features opentelemetry --all-targets --locked -- -D warnings

# fabric-core's own tests turn the `testing` feature on (a dev-dependency on itself), so the
# workspace steps lint and run `testing::TestBroker` (tests/test_broker.rs and the fault tests).
step "cargo clippy -D warnings, fabric-core with the testing feature (TestBroker)"
cargo clippy -p fabric-core --features testing --all-targets --locked -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
RUSTDOCFLAGS="-D warnings" cargo doc -p fabric-core --no-deps --locked --quiet

step "cargo test (unit, broker, TLS, trybuild and doc tests)"
cargo test --workspace --locked

step "cargo test, the metrics feature: a known run read back from the recorder"
cargo test -p fabric-core --features metrics --test metrics --locked

step "cargo test, fabric-core's unit tests without default features (amqps refused with what to enable)"
cargo test -p fabric-core --no-default-features --lib --locked

step "cargo test, fabric-core's tracing bridge (spans in one OpenTelemetry trace, tracing events in the remote log)"
cargo test -p fabric-core --features opentelemetry --test tracing --locked
