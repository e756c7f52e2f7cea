#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, builds the service
# binaries the integration tests start, and runs every test with nextest.
# Integration tests start their own redis-server and tansu broker on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo build --workspace --bins
cargo nextest run --workspace --profile "${NEXTEST_PROFILE:-default}" "$@"
