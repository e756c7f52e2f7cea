#!/usr/bin/env bash
# The fleet across hosts: runs `baton-loadtest --mode netns` (release build), which puts Redis,
# the broker, the gateway, three workers, the scheduler and the reaper each in a Linux network
# namespace of its own, joined by a bridge, and then
#   - cuts the worker holding a run mid-step off from Redis (nft drop): the run must resume on
#     another worker, the cut worker commit nothing, the effect be called under one key only;
#   - cuts a worker holding runs off from the broker: its runs must finish, new runs go elsewhere;
#   - cuts the gateway off from the broker: submits must answer within 2 s, the runs must start;
#   - runs W1 (RUNS runs x 10 echo steps, 64 in flight) on a fresh fleet, then on one whose workers
#     reach Redis through a relay adding DELAY_MS each way and lose LOSS % of the packets.
# Needs root (or CAP_NET_ADMIN); everything it made is removed when it ends, even on Ctrl-C.
#   loadtest/scripts/netns.sh [runs] [delay-ms-each-way] [loss-percent]
# The CI-sized version is crates/testkit/tests/netns.rs (part of scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-400}"
DELAY_MS="${2:-10}"
LOSS="${3:-1}"
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "netns.sh needs root (network namespaces, nft)" >&2; exit 2; }
bash scripts/install-deps.sh
cargo build --release --workspace --bins
target/release/baton-loadtest --mode netns --runs "$RUNS" --delay-ms "$DELAY_MS" --loss-percent "$LOSS"
