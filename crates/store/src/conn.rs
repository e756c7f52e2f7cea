//! The one connection handle of the store: a pool of connections to a single Redis, or one
//! multiplexed connection to a Redis Cluster that routes each command to the node owning its
//! key's slot. Everything else in the crate writes commands the same way for both; what differs
//! is kept here: commands that touch keys of several slots go out as a [`Store::each`] batch
//! (one pipeline on a single Redis, one request per command on a cluster), and writes that must
//! reach replicas are followed by `WAIT` on the same node ([`Store::write_acked`]).

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, Script, ScriptInvocation, Value};
use tokio::sync::OnceCell;

use crate::{Error, Result, Store, RESPONSE_TIMEOUT};

/// Where the store's connections go.
#[derive(Clone)]
pub(crate) enum Backend {
    /// A single Redis (or a primary behind a proxy): a pool of multiplexed connections.
    Single(Pool),
    /// A Redis Cluster: one multiplexed connection, opened on first use.
    Cluster(Arc<Cluster>),
}

/// The cluster client and its connection.
pub(crate) struct Cluster {
    client: redis::cluster::ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl Backend {
    /// The backend `config` names. Connections are opened lazily.
    pub(crate) fn new(config: &baton_config::Redis) -> Result<Self> {
        if config.cluster {
            let seeds: Vec<&str> =
                std::iter::once(config.url.as_str()).chain(config.cluster_seeds.iter().map(String::as_str)).collect();
            let client = redis::cluster::ClusterClient::builder(seeds)
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(4)
                .build()?;
            return Ok(Backend::Cluster(Arc::new(Cluster { client, connection: OnceCell::new() })));
        }
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let manager = Manager::new_with_config(config.url.as_str(), connection)?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Backend::Single(pool))
    }

    /// True for a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster(_))
    }
}

/// A connection from the store: pooled (single Redis) or the shared cluster connection.
pub enum Conn {
    /// From the pool of a single Redis.
    Single(deadpool_redis::Connection),
    /// A handle on the cluster connection.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Store {
    /// A connection: pooled, or the cluster's (opened on first use).
    pub async fn conn(&self) -> Result<Conn> {
        match &self.backend {
            Backend::Single(pool) => Ok(Conn::Single(pool.get().await?)),
            Backend::Cluster(cluster) => {
                let connection = cluster.connection.get_or_try_init(|| cluster.client.get_async_connection()).await?;
                Ok(Conn::Cluster(connection.clone()))
            }
        }
    }

    /// True when the store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.backend.is_cluster()
    }

    /// Runs independent commands that may touch keys of different slots, and returns their
    /// replies in order: one pipeline on a single Redis, one request per command (concurrently,
    /// over the multiplexed connection) on a cluster. Not atomic, like any pipeline.
    pub(crate) async fn each<T: FromRedisValue>(&self, cmds: Vec<Cmd>) -> Result<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        if let Conn::Single(_) = conn {
            let mut pipe = redis::pipe();
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            return Ok(pipe.query_async(&mut conn).await?);
        }
        let queries = cmds.into_iter().map(|cmd| {
            let mut conn = match &conn {
                Conn::Cluster(c) => Conn::Cluster(c.clone()),
                Conn::Single(_) => unreachable!("handled above"),
            };
            async move { cmd.query_async::<T>(&mut conn).await }
        });
        let replies = futures::future::join_all(queries).await;
        Ok(replies.into_iter().collect::<std::result::Result<Vec<T>, _>>()?)
    }

    /// Runs `pipe` on `conn`. If the server does not know one of `scripts` (Redis restarted, or
    /// a replica was promoted, and its script cache is empty), loads them and runs it again.
    pub(crate) async fn query_loading<T: FromRedisValue>(
        &self,
        conn: &mut Conn,
        pipe: &Pipeline,
        scripts: &[&Script],
    ) -> Result<T> {
        match pipe.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                for script in scripts {
                    script.load_async(conn).await?;
                }
                Ok(pipe.query_async(conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// Runs `pipe` — writes of one slot, no script — and, with `redis.min_replicas_acked` above
    /// 0, `WAIT`s for that many replicas in the same round trip (see [`Store::write_acked`]).
    /// For the hints a failover must not lose either: the due-time index entries.
    pub(crate) async fn pipe_acked(&self, conn: &mut Conn, mut pipe: Pipeline) -> Result<()> {
        let wanted = self.replicas.min_acked;
        if wanted == 0 {
            let () = pipe.query_async(conn).await?;
            return Ok(());
        }
        pipe.cmd("WAIT").arg(wanted).arg(self.replicas.timeout_ms);
        let mut replies: Vec<Value> = pipe.query_async(conn).await?;
        let acked: i64 = replies.pop().map(redis::from_redis_value).transpose()?.unwrap_or(0);
        if acked < i64::from(wanted) {
            metrics::counter!(crate::metric_definitions::NOT_REPLICATED).increment(1);
            return Err(Error::NotReplicated { wanted, acked: acked.max(0) as u32 });
        }
        Ok(())
    }

    /// Runs `invocation` of `script` — a write of one slot — and, with
    /// `redis.min_replicas_acked` above 0, `WAIT`s for that many replicas on the same node, in
    /// the same round trip. A write the replicas did not confirm in time is
    /// [`Error::NotReplicated`]: it happened on the primary, but a failover may lose it.
    pub(crate) async fn write_acked<T: FromRedisValue>(
        &self,
        conn: &mut Conn,
        script: &Script,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let wanted = self.replicas.min_acked;
        if wanted == 0 {
            return Ok(invocation.invoke_async(conn).await?);
        }
        let mut pipe = redis::pipe();
        pipe.invoke_script(invocation).cmd("WAIT").arg(wanted).arg(self.replicas.timeout_ms);
        let (reply, acked): (Value, i64) = self.query_loading(conn, &pipe, &[script]).await?;
        if acked < i64::from(wanted) {
            metrics::counter!(crate::metric_definitions::NOT_REPLICATED).increment(1);
            return Err(Error::NotReplicated { wanted, acked: acked.max(0) as u32 });
        }
        Ok(redis::from_redis_value(reply)?)
    }
}

/// Replica acknowledgement settings.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Replicas {
    /// Replicas that must confirm a write (0: none).
    pub min_acked: u32,
    /// How long to wait for them, ms.
    pub timeout_ms: u64,
}
