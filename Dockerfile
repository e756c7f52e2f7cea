# Baton image: the four services (baton-gateway, baton-worker, baton-scheduler, baton-reaper),
# batonctl and baton-loadtest on Debian bookworm, run as a non-root user. The first argument
# picks the program (docker/baton-entrypoint):
#
#   docker build -t baton:0.1.0 .                        # compiles in the builder stage
#   docker run --rm baton:0.1.0 gateway                  # or worker | scheduler | reaper
#   docker run --rm baton:0.1.0 batonctl --help          # or loadtest --mode w1 ...
#
# Without registry access (docs/compose.md): build the binaries on a bookworm host and package
# them with the `runtime-prebuilt` target, whose build context is a directory holding bin/
# (the six binaries and baton-entrypoint), on a locally imported base image:
#
#   cargo build --release --bins
#   mkdir -p ctx/bin && cp target/release/{baton-gateway,baton-worker,baton-scheduler,baton-reaper,batonctl,baton-loadtest} docker/baton-entrypoint ctx/bin/
#   strip --strip-debug ctx/bin/baton-* ctx/bin/batonctl   # the release profile keeps line tables: ~600 MB → ~100 MB
#   docker build --target runtime-prebuilt --build-arg RUNTIME_IMAGE=localhost/debian-base:bookworm -f Dockerfile -t baton:0.1.0 ctx
#
# Both runtime targets share the `runtime-base` stage; the default target is `runtime`.

# Pinned: the toolchain the workspace is tested with, and Debian 12 (bookworm) for both stages,
# so the binaries link against the glibc they run with.
ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:12.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
# librdkafka is compiled from source by rdkafka-sys (./configure + make, C and C++); zlib is
# vendored by libz-sys; protoc comes from the protoc-bin-vendored crate; TLS is rustls (ring).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No debug info in the image's binaries (cargo then strips it): ~20 MB per service instead of
# ~110 MB with the workspace's line tables; symbols stay, so backtraces name functions.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
# Cache mounts keep the registry and target/ between builds (BuildKit, or podman/buildah).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
      -p baton-gateway -p baton-worker -p baton-scheduler -p baton-reaper -p batonctl -p baton-loadtest \
 && mkdir -p /out \
 && cd target/release \
 && cp baton-gateway baton-worker baton-scheduler baton-reaper batonctl baton-loadtest /out/ \
 && cp /src/docker/baton-entrypoint /out/

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime-base
# ca-certificates: TLS to model endpoints and HTTP tools. Nothing else: health checks use
# `baton-entrypoint ready <port>` (bash /dev/tcp), no curl.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 baton \
 && useradd --system --uid 10001 --gid baton --home-dir /var/lib/baton --create-home --shell /usr/sbin/nologin baton
# Containers listen on every interface; BATON_<SECTION>_<KEY> overrides any config key
# (crates/config), e.g. BATON_KAFKA_BROKERS=kafka:9092, BATON_REDIS_URL=redis://redis:6379.
ENV BATON_GATEWAY_LISTEN=0.0.0.0:50051 \
    BATON_GATEWAY_OPS_LISTEN=0.0.0.0:9460 \
    BATON_WORKER_OPS_LISTEN=0.0.0.0:9461 \
    BATON_SCHEDULER_OPS_LISTEN=0.0.0.0:9462 \
    BATON_REAPER_OPS_LISTEN=0.0.0.0:9463 \
    BATON_TELEMETRY_LOG_LEVEL=info,librdkafka=warn,rdkafka=warn
# gRPC API (gateway); ops endpoints /healthz /readyz /metrics of gateway, worker, scheduler, reaper.
EXPOSE 50051 9460 9461 9462 9463
WORKDIR /var/lib/baton
USER 10001:10001
ENTRYPOINT ["baton-entrypoint"]
CMD ["help"]

# ---------------------------------------------------------------------------------------------
# Binaries built on a bookworm host; the build context is a directory with bin/ (see the top).
FROM runtime-base AS runtime-prebuilt
COPY bin/ /usr/local/bin/
RUN baton-entrypoint gateway --dump-config >/dev/null

# ---------------------------------------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=builder /out/ /usr/local/bin/
RUN baton-entrypoint gateway --dump-config >/dev/null
