#!/usr/bin/env bash
# Runs docker-compose.yml for real on a machine without a Docker engine or registry access
# (docs/compose.md, "Smoke run without a registry"): podman + docker-compose 1.29 through podman's
# Docker API socket, images built from a debootstrap'ed Debian base, the host-built release
# binaries, and compose/local.override.yml swapping each public image for a local stand-in.
# Then: the stack up (one worker), a W1 load, `--scale worker=3`, a second W1 load with one
# worker container SIGKILLed mid-load, an audit of every run of both, and `down`. Needs root
# (podman, debootstrap, apt-get). Bounded (every wait has a limit; about 5 minutes once the
# binaries and images exist, plus 2 for debootstrap the first time) and idempotent: a second
# run reuses the base and the image layers. Exit 0 when every run of both loads succeeded.
#
#   scripts/compose-smoke.sh [--runs N] [--kill-after SECS] [--no-build] [--purge]
#
# --no-build packages the binaries already in target/release instead of running cargo first.
#
# Cleans up what it started (containers, network, volumes, the podman API service, build
# contexts) on exit; keeps the W1 reports and container logs in .baton/compose-smoke/, and the
# images for the next run unless --purge is given.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=10000
KILL_AFTER=6
PURGE=""
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --kill-after) KILL_AFTER=$2; shift 2 ;;
    --no-build) BUILD=""; shift ;;
    --purge) PURGE=1; shift ;;
    *) echo "usage: $0 [--runs N] [--kill-after SECS] [--no-build] [--purge]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "$0 needs root (podman, debootstrap, apt-get): run it with sudo" >&2; exit 2; }

PROJECT=baton-smoke
WORK="$ROOT/.baton/compose-smoke"
SOCK="$WORK/podman.sock"
BASE=localhost/debian-base:bookworm
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
mkdir -p "$WORK"
log() { printf '==> %s\n' "$*" >&2; }
compose() { docker-compose -p "$PROJECT" -f docker-compose.yml -f compose/local.override.yml "$@"; }

# --- cleanup: everything this script starts ---------------------------------------------------
SERVICE_PID="" HEALTH_PID=""
cleanup() {
  local rc=$?
  set +e
  if [ -S "$SOCK" ]; then
    # Keep every container's log for a look afterwards.
    rm -rf "$WORK/logs" && mkdir -p "$WORK/logs"
    for c in $(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
      podman logs "$c" >"$WORK/logs/$(podman inspect --format '{{.Name}}' "$c").log" 2>&1
    done
    log "stopping the stack (down -t 1, volumes removed); container logs in $WORK/logs/"
    DOCKER_HOST="unix://$SOCK" timeout 120 docker-compose -p "$PROJECT" -f docker-compose.yml \
      -f compose/local.override.yml --profile loadtest down -v -t 1 --remove-orphans >/dev/null 2>&1
  fi
  [ -n "$HEALTH_PID" ] && kill "$HEALTH_PID" 2>/dev/null
  [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
  # Anything of the project left behind (e.g. after a failed `up`).
  podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman rm -f -t 1 >/dev/null 2>&1
  podman network ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman network rm >/dev/null 2>&1
  podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman volume rm >/dev/null 2>&1
  rm -f "$SOCK"
  rm -rf "$WORK/image" "$WORK/standin" # build contexts (copies of the binaries)
  if [ -n "$PURGE" ]; then
    podman rmi -f "localhost/baton:$VERSION" localhost/baton-standin-tansu:0.6.0 \
      localhost/baton-standin-redis:bookworm localhost/baton-standin-prometheus:bookworm "$BASE" >/dev/null 2>&1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. podman, docker-compose, debootstrap (CONTAINERS.md) ------------------------------------
need=()
for tool in podman docker-compose debootstrap runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  log "installing podman runc debootstrap docker-compose (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap docker-compose >/dev/null
fi
if [ ! -f /etc/containers/containers.conf ]; then
  log "writing /etc/containers/containers.conf (runc, cgroupfs, ulimits this sandbox allows)"
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
fi

# --- 2. the Debian base image, without a registry ----------------------------------------------
if ! podman image exists "$BASE"; then
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  log "debootstrap bookworm from $MIRROR (about 2 minutes), then podman import $BASE"
  ROOTFS="$WORK/rootfs"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
  # Smaller, like debian:bookworm-slim: no package cache, lists, docs, man pages or locales.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/info/*
  tar -C "$ROOTFS" -c . | podman import -q - "$BASE" >/dev/null
  rm -rf "$ROOTFS"
fi

# --- 3. binaries and images ---------------------------------------------------------------------
[ -x "$CARGO_BIN/tansu" ] || bash scripts/install-deps.sh
if [ -n "$BUILD" ]; then
  log "cargo build --release (the six binaries of the image)"
  cargo build --release --bins -p baton-gateway -p baton-worker -p baton-scheduler -p baton-reaper \
    -p batonctl -p baton-loadtest
fi
CTX="$WORK/image"
rm -rf "$CTX" && mkdir -p "$CTX/bin"
cp "$BIN"/{baton-gateway,baton-worker,baton-scheduler,baton-reaper,batonctl,baton-loadtest} docker/baton-entrypoint "$CTX/bin/"
# The release profile keeps line tables (about 110 MB a binary); the image does not need them.
strip --strip-debug "$CTX"/bin/baton-{gateway,worker,scheduler,reaper,loadtest} "$CTX/bin/batonctl"
log "building localhost/baton:$VERSION (Dockerfile target runtime-prebuilt)"
podman build -q --target runtime-prebuilt --build-arg "RUNTIME_IMAGE=$BASE" -f Dockerfile \
  -t "localhost/baton:$VERSION" "$CTX" >/dev/null
STANDIN="$WORK/standin"
rm -rf "$STANDIN" && mkdir -p "$STANDIN"
cp compose/local/kafka-ready compose/local/redis-entry "$CARGO_BIN/tansu" "$STANDIN/"
for target in tansu redis prometheus; do
  case $target in tansu) tag=0.6.0 ;; *) tag=bookworm ;; esac
  log "building localhost/baton-standin-$target:$tag (compose/local/Dockerfile)"
  podman build -q --target "$target" --build-arg "BASE_IMAGE=$BASE" -f compose/local/Dockerfile \
    -t "localhost/baton-standin-$target:$tag" "$STANDIN" >/dev/null
done
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'baton|debian-base' | sed 's/^/    /' >&2

# Start-up cost of the image: a container that loads the config and exits.
START=$(date +%s%N)
podman run --rm "localhost/baton:$VERSION" gateway --dump-config >/dev/null
log "container start + gateway --dump-config + exit: $((($(date +%s%N) - START) / 1000000)) ms"

# --- 4. docker-compose through podman's Docker API ---------------------------------------------
for port in 50051 9460 9462 9463 9090 29092; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is in use on this host (scripts/stack.sh up?): stop that first"; exit 1
  fi
done
rm -f "$SOCK"
podman system service --time=0 "unix://$SOCK" >"$WORK/podman-service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
export DOCKER_HOST="unix://$SOCK"
# No systemd: run the health checks of this project's containers ourselves.
(
  while :; do
    for c in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter health=starting) \
      $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter health=unhealthy); do
      podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
    sleep 1
  done
) &
HEALTH_PID=$!

# Prometheus's answer to an instant query, as one number.
prom_query() {
  curl -sfG --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query 2>/dev/null \
    | sed -n 's/.*"value":\[[^,]*,"\([0-9.]*\)".*/\1/p'
}
project_ps() { podman ps -q --filter "label=com.docker.compose.project=$PROJECT" "$@"; }

# Waits (bounded) until N containers of the project are healthy.
wait_healthy() { # N what
  local healthy=0
  for i in $(seq 1 240); do
    healthy=$(project_ps --filter health=healthy | wc -l)
    [ "$healthy" -ge "$1" ] && break
    if [ $((i % 20)) = 0 ]; then # every 10 s: who is not healthy yet, and why
      for c in $(project_ps --filter health=starting) $(project_ps --filter health=unhealthy); do
        log "  waiting for $(podman inspect --format '{{.Name}}' "$c"): $(podman inspect --format \
          '{{range .State.Health.Log}}{{.Output}}{{"\n"}}{{end}}' "$c" | grep -v '^$' | tail -1)"
      done
    fi
    sleep 0.5
  done
  log "$2: $healthy containers healthy $((($(date +%s%N) - START) / 1000000)) ms after the command"
  [ "$healthy" -ge "$1" ] || { compose ps; log "not healthy within 2 minutes"; exit 1; }
}

# One W1 load through `docker-compose run loadtest`; KILL_AT > 0 SIGKILLs a worker container that
# many seconds in. Prints the report and an audit of every run of the load, read back through
# the gateway (status of each, and the runs slower than 1 s: those the kill delayed).
w1() { # runs kill-at label
  local tenant rc=0
  tenant="smoke-$3-$(date +%s)"
  log "W1 ($3): $1 runs x 10 echo steps, 64 in flight, via docker-compose run loadtest"
  timeout 600 docker-compose -p "$PROJECT" -f docker-compose.yml -f compose/local.override.yml \
    --profile loadtest run --rm -T loadtest --mode w1 --runs "$1" --steps 10 --concurrency 64 \
    --tenant "$tenant" --timeout-secs 400 >"$WORK/w1-$3.txt" 2>&1 &
  local load=$!
  if [ "$2" -gt 0 ]; then
    sleep "$2"
    local victim; victim=$(project_ps --filter "label=com.docker.compose.service=worker" | head -1)
    podman kill --signal KILL "$victim" >/dev/null
    log "SIGKILLed worker container $(podman inspect --format '{{.Name}}' "$victim") ${2}s after the load started"
  fi
  wait "$load" || rc=$?
  grep -v '^Starting\|^\[' "$WORK/w1-$3.txt" || true
  python3 - "$BIN/batonctl" "$tenant" "$1" <<'PY'
import json, subprocess, sys
ctl, tenant, planned = sys.argv[1], sys.argv[2], int(sys.argv[3])
token, runs = "", []
while True:
    args = [ctl, "--addr", "http://127.0.0.1:50051", "--tenant", tenant, "--json", "list", "--page-size", "500"]
    page = json.loads(subprocess.run(args + (["--page-token", token] if token else []), check=True, capture_output=True, text=True).stdout)
    runs += page["runs"]
    token = page["next_page_token"]
    if not token:
        break
by = {}
for r in runs:
    by[r["status"]] = by.get(r["status"], 0) + 1
slow = sorted(r["updated_at_ms"] - r["created_at_ms"] for r in runs if r["updated_at_ms"] - r["created_at_ms"] > 1000)
print(f"audit: {len(runs)} runs recorded of {planned} submitted; by status: {by}; lost: {planned - by.get('succeeded', 0)}")
if slow:
    print(f"audit: {len(slow)} runs took over 1 s, slowest {slow[-1]} ms, median of those {slow[len(slow) // 2]} ms")
PY
  return "$rc"
}

log "docker-compose up -d"
START=$(date +%s%N)
timeout 300 docker-compose -p "$PROJECT" -f docker-compose.yml -f compose/local.override.yml up -d
# `up -d` waits for the health of dependencies only; wait for every long-running container:
# kafka, redis, prometheus, gateway, worker, scheduler, reaper.
wait_healthy 7 "stack up"
compose ps
BASE_RC=0
w1 2000 0 baseline || BASE_RC=$?

log "docker-compose up -d --scale worker=3"
START=$(date +%s%N)
timeout 300 docker-compose -p "$PROJECT" -f docker-compose.yml -f compose/local.override.yml up -d --scale worker=3
wait_healthy 9 "scaled"

# Prometheus: every target up (gateway, 3 workers via DNS, scheduler, reaper), rules loaded.
for _ in $(seq 1 30); do
  up=$(prom_query 'sum(up{job=~"baton-.*"})')
  [ "${up:-0}" -ge 6 ] && break
  sleep 1
done
log "Prometheus: ${up:-0} Baton targets up (expected 6: gateway, 3 workers, scheduler, reaper)"
rules=$(curl -sf http://127.0.0.1:9090/api/v1/rules | grep -o '"name":"Baton[A-Za-z]*"' | wc -l || true)
log "Prometheus: $rules Baton alert rules loaded"
"$BIN/batonctl" --addr http://127.0.0.1:50051 readiness --prometheus http://127.0.0.1:9090 || true

LOAD_RC=0
w1 "$RUNS" "$KILL_AFTER" failover || LOAD_RC=$?
compose ps worker
sleep 6 # a scrape and a liveness period after the kill
fleet=$(prom_query 'max(baton_fleet_workers)')
log "live workers after the kill (baton_fleet_workers): ${fleet:-?}"
log "reaper: $(prom_query 'sum(baton_reaper_dead_workers_total)') dead workers found, $(prom_query \
  'sum(baton_reaper_leases_broken_total)') leases broken, $(prom_query 'sum(baton_reaper_redispatched_total)') steps re-dispatched"
if [ "$BASE_RC" = 0 ] && [ "$LOAD_RC" = 0 ]; then log "compose smoke passed"; exit 0; fi
log "compose smoke FAILED (loadtest exit: baseline $BASE_RC, failover $LOAD_RC)"
exit 1
