# Sourced by the loadtest scripts that drive the running dev stack (scripts/stack.sh up): the
# binaries of BATON_PROFILE (default release) in $BIN, the stack's state directory in $STATE,
# and the stack's addresses and log level exported for the processes they start.
case "${BATON_PROFILE:-release}" in debug|dev) DIR=debug ;; *) DIR="${BATON_PROFILE:-release}" ;; esac
BIN="${CARGO_TARGET_DIR:-target}/$DIR"
STATE=.baton
export BATON_REDIS_URL="${BATON_REDIS_URL:-redis://127.0.0.1:${BATON_DEV_REDIS_PORT:-16379}}"
export BATON_KAFKA_BROKERS="${BATON_KAFKA_BROKERS:-127.0.0.1:${BATON_DEV_BROKER_PORT:-19092}}"
export BATON_TELEMETRY_LOG_LEVEL="${BATON_TELEMETRY_LOG_LEVEL:-info,librdkafka=warn,rdkafka=warn}"
[ -f "$STATE/worker.pid" ] || { echo "start the stack first: BATON_PROFILE=release scripts/stack.sh up" >&2; exit 2; }
