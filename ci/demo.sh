#!/usr/bin/env bash
# The main demo: a multiplier server and a client as two processes talking through RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/build-deps.sh
bash ci/broker.sh
cargo build --quiet --release -p fabric-examples --bins
cargo build --quiet --release -p fabric-cli

./target/release/multiplier_server &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

# The client waits for the server's health check, so no sleep is needed here.
./target/release/multiplier_client

# The same server seen and called from the command line.
./target/release/fabric services --domain my_project
./target/release/fabric call my_project/server_app/my_app multiply x=5 y=7

# Ctrl-C equivalent: the server finishes its calls in hand and stops.
kill -INT "$server"
wait "$server"
trap - EXIT
