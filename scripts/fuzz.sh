#!/usr/bin/env bash
# A longer fuzzing campaign than CI's: the proptest targets of crates/core/tests/fuzz.rs
# (task, event and checkpoint decoders; RunSpec admission; tool arguments) and
# crates/config/tests/fuzz.rs (the tool manifest parser), with CASES cases each.
#
#   scripts/fuzz.sh [CASES]     default 20000 (CI runs 256 through scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${1:-20000}"
echo "==> $PROPTEST_CASES cases per target"
cargo nextest run -p baton-core -p baton-config --test fuzz --no-fail-fast
