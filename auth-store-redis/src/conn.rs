//! The shared connection: configuration, lazy connecting, bounded operations and
//! error mapping.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auth_core::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{
    Cmd, ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, ProtocolVersion,
    RedisError, RedisFuture, ScriptInvocation, Value,
};

use crate::keys::Keys;

/// The key prefix used when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "auth";
/// How long one connection attempt may take, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long Redis may take to answer one command, by default.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one store call may take in all (connecting, retrying, answering), by
/// default.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// A configuration this crate refuses, reported by [`RedisConfig::build`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key prefix is empty or contains `{` or `}` (the crate places the hash
    /// tags itself).
    #[error("the key prefix must be non-empty and must not contain '{{' or '}}'")]
    InvalidPrefix,
    /// A timeout is zero.
    #[error("the {0} timeout must be greater than zero")]
    ZeroTimeout(&'static str),
    /// The URL (or a cluster node's URL) does not parse.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] RedisError),
    /// Cluster mode without any node.
    #[error("a cluster needs at least one node URL")]
    NoNodes,
}

#[derive(Clone)]
enum Target {
    Single(String),
    #[cfg(feature = "cluster")]
    Cluster(Vec<String>),
}

/// Where Redis is and how long to wait for it; [`Self::build`] checks it and
/// returns a [`RedisConnection`] for the stores.
///
/// ```
/// use std::time::Duration;
/// use auth_store_redis::RedisConfig;
///
/// let redis = RedisConfig::new("redis://127.0.0.1:6379")
///     .key_prefix("myapp")
///     .response_timeout(Duration::from_millis(250))
///     .build()?;
/// # Ok::<(), auth_store_redis::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    target: Target,
    key_prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: it is not printed.
        f.debug_struct("RedisConfig")
            .field("mode", &self.mode())
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// One Redis server (or a primary behind a proxy), e.g.
    /// `redis://user:password@host:6379/0`; `rediss://` needs a TLS feature of the
    /// `redis` crate enabled by the application.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_target(Target::Single(url.into()))
    }

    /// A Redis Cluster, reached through any of `nodes` (feature `cluster`).
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Every key starts with `<prefix>:` (default [`DEFAULT_KEY_PREFIX`]), so several
    /// applications or test runs can share one Redis. It must be non-empty and free
    /// of `{` and `}`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The bound on one connection attempt (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on one command's answer (default [`DEFAULT_RESPONSE_TIMEOUT`]).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The bound on a whole store call, reconnecting and one retry of an idempotent
    /// command included (default [`DEFAULT_OPERATION_TIMEOUT`]). Past it the call
    /// fails with [`StoreError::Unavailable`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    fn mode(&self) -> &'static str {
        match self.target {
            Target::Single(_) => "single",
            #[cfg(feature = "cluster")]
            Target::Cluster(_) => "cluster",
        }
    }

    /// Checks the configuration and returns a connection handle. Nothing is sent
    /// yet: the connection opens on first use (inside a Tokio runtime) and reopens
    /// by itself after a failure, so an application can start while Redis is down
    /// (call [`RedisConnection::ping`] to insist on it at start-up).
    ///
    /// # Errors
    /// [`ConfigError`] for a bad prefix, a zero timeout or a URL that does not
    /// parse.
    pub fn build(self) -> Result<RedisConnection, ConfigError> {
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            return Err(ConfigError::InvalidPrefix);
        }
        for (name, t) in [
            ("connect", self.connect_timeout),
            ("response", self.response_timeout),
            ("operation", self.operation_timeout),
        ] {
            if t.is_zero() {
                return Err(ConfigError::ZeroTimeout(name));
            }
        }
        let client = match &self.target {
            Target::Single(url) => Client::Single(
                redis::Client::open(connection_info(url)?).map_err(ConfigError::InvalidUrl)?,
            ),
            #[cfg(feature = "cluster")]
            Target::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err(ConfigError::NoNodes);
                }
                let mut builder =
                    redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
                        .connection_timeout(self.connect_timeout)
                        .response_timeout(self.response_timeout)
                        .overall_response_timeout(Some(self.operation_timeout));
                if !nodes.iter().any(|url| names_protocol(url)) {
                    builder = builder.use_protocol(ProtocolVersion::RESP3);
                }
                let client = builder.build().map_err(ConfigError::InvalidUrl)?;
                Client::Cluster(Box::new(client))
            }
        };
        Ok(RedisConnection {
            inner: Arc::new(Inner {
                keys: Keys::new(&self.key_prefix),
                mode: self.mode(),
                client,
                conn: OnceLock::new(),
                connect_timeout: self.connect_timeout,
                response_timeout: self.response_timeout,
                operation_timeout: self.operation_timeout,
            }),
        })
    }
}

/// Parses a URL; RESP3 unless it names a protocol (`?protocol=resp2`): with RESP3
/// the client learns of a dropped connection as it happens and reopens it before
/// the next command, instead of failing that command.
fn connection_info(url: &str) -> Result<ConnectionInfo, ConfigError> {
    let info = url
        .into_connection_info()
        .map_err(ConfigError::InvalidUrl)?;
    if names_protocol(url) {
        return Ok(info);
    }
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(redis))
}

/// Whether a URL sets `protocol=` in its query.
fn names_protocol(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|kv| kv.starts_with("protocol=")))
}

enum Client {
    Single(redis::Client),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// A multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

struct Inner {
    keys: Keys,
    mode: &'static str,
    client: Client,
    conn: OnceLock<Result<Conn, RedisError>>,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
}

/// A handle on Redis shared by [`crate::RedisAttemptStore`],
/// [`crate::RedisSessionStore`] and [`crate::RedisChallengeStore`]: cheap to
/// clone (one multiplexed connection underneath), built by
/// [`RedisConfig::build`].
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("mode", &self.inner.mode)
            .field("key_prefix", &self.inner.keys)
            .field("operation_timeout", &self.inner.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether a failed command may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not idempotent: one attempt only.
    Never,
    /// Idempotent: once more after an I/O failure (a dropped connection), which
    /// also makes the connection reopen.
    OnceOnIo,
}

/// A store call that did not finish within the operation timeout.
#[derive(Debug, thiserror::Error)]
#[error("Redis did not answer within {0:?}")]
struct TimedOut(Duration);

impl RedisConnection {
    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Sends `PING`: a start-up or readiness check.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached within the
    /// operation timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING"), Retry::OnceOnIo).await?;
        Ok(())
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        let inner = &self.inner;
        let conn = inner.conn.get_or_init(|| match &inner.client {
            Client::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.connect_timeout))
                    .set_response_timeout(Some(inner.response_timeout))
                    // One attempt per request; a failed one reconnects on the next.
                    .set_number_of_retries(0);
                ConnectionManager::new_lazy_with_config(client.clone(), config).map(Conn::Single)
            }
            #[cfg(feature = "cluster")]
            Client::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(inner.connect_timeout)
                    .set_response_timeout(inner.response_timeout);
                Ok(Conn::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        });
        conn.clone().map_err(map_err)
    }

    /// Runs `op` on the connection within the operation timeout, once more after
    /// an I/O failure when `retry` allows.
    async fn run<T, F, Fut>(&self, retry: Retry, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempts = async {
            let mut retried = false;
            loop {
                match op(self.conn()?).await {
                    Ok(value) => return Ok(value),
                    Err(e) if retry == Retry::OnceOnIo && !retried && e.is_io_error() => {
                        retried = true;
                    }
                    Err(e) => return Err(map_err(e)),
                }
            }
        };
        let bound = self.inner.operation_timeout;
        tokio::time::timeout(bound, attempts)
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable(Box::new(TimedOut(bound)))))
    }

    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        retry: Retry,
    ) -> Result<T, StoreError> {
        self.run(
            retry,
            |mut conn| async move { cmd.query_async(&mut conn).await },
        )
        .await
    }

    /// Runs `cmds`, each on its own key, in one round trip where the
    /// connection allows: a pipeline on one server. A cluster's pipelines
    /// must stay within one slot, so there they run one after another.
    pub(crate) async fn query_each<T: FromRedisValue>(
        &self,
        cmds: &[Cmd],
        retry: Retry,
    ) -> Result<Vec<T>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        self.run(retry, |mut conn| async move {
            match conn {
                Conn::Single(_) => {
                    let mut pipe = redis::pipe();
                    for cmd in cmds {
                        pipe.add_command(cmd.clone());
                    }
                    pipe.query_async(&mut conn).await
                }
                #[cfg(feature = "cluster")]
                Conn::Cluster(_) => {
                    let mut values = Vec::with_capacity(cmds.len());
                    for cmd in cmds {
                        values.push(cmd.query_async(&mut conn).await?);
                    }
                    Ok(values)
                }
            }
        })
        .await
    }

    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        retry: Retry,
    ) -> Result<T, StoreError> {
        self.run(retry, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Every key matching `pattern` (a `SCAN MATCH` pattern) of `kind` (a Redis
    /// type name), in batches: on a cluster, from every primary.
    pub(crate) fn scan(&self, pattern: String, kind: &'static str) -> Scan<'_> {
        Scan {
            conn: self,
            pattern,
            kind,
            state: ScanState::Start,
        }
    }
}

/// Maps a Redis error to the store's error kinds: what a retry later may fix is
/// [`StoreError::Unavailable`].
pub(crate) fn map_err(e: RedisError) -> StoreError {
    use redis::ServerErrorKind as S;
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.code() == Some("BUSY")
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    S::TryAgain
                        | S::ClusterDown
                        | S::MasterDown
                        | S::BusyLoading
                        | S::ReadOnly
                        | S::Moved
                        | S::Ask
                )
        );
    if unavailable {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Other(Box::new(e))
    }
}

const SCAN_COUNT: usize = 1000;

enum ScanState {
    Start,
    Single(u64),
    #[cfg(feature = "cluster")]
    Cluster(Vec<(String, u16, u64)>),
    Done,
}

/// Batches of keys from `SCAN`; see [`RedisConnection::scan`].
pub(crate) struct Scan<'a> {
    conn: &'a RedisConnection,
    pattern: String,
    kind: &'static str,
    state: ScanState,
}

impl Scan<'_> {
    fn command(&self, cursor: u64) -> Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .arg("TYPE")
            .arg(self.kind);
        cmd
    }

    /// The next batch (possibly empty), or `None` when the scan is complete.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        match std::mem::replace(&mut self.state, ScanState::Done) {
            ScanState::Done => Ok(None),
            ScanState::Start => match self.conn.conn()? {
                Conn::Single(_) => self.single(0).await,
                #[cfg(feature = "cluster")]
                Conn::Cluster(_) => self.cluster_start().await,
            },
            ScanState::Single(cursor) => self.single(cursor).await,
            #[cfg(feature = "cluster")]
            ScanState::Cluster(nodes) => self.cluster_next(nodes).await,
        }
    }

    async fn single(&mut self, cursor: u64) -> Result<Option<Vec<String>>, StoreError> {
        let (next, keys): (u64, Vec<String>) = self
            .conn
            .query(&self.command(cursor), Retry::OnceOnIo)
            .await?;
        self.state = if next == 0 {
            ScanState::Done
        } else {
            ScanState::Single(next)
        };
        Ok(Some(keys))
    }
}

#[cfg(feature = "cluster")]
impl Scan<'_> {
    /// Runs one scan step on the node(s) `routing` names (on the one server when
    /// the connection is not to a cluster).
    async fn routed(
        &self,
        cmd: Cmd,
        routing: redis::cluster_routing::RoutingInfo,
    ) -> Result<Value, StoreError> {
        self.conn
            .run(Retry::OnceOnIo, |conn| {
                let (cmd, routing) = (cmd.clone(), routing.clone());
                async move {
                    match conn {
                        Conn::Cluster(mut c) => c.route_command(cmd, routing).await,
                        Conn::Single(mut c) => cmd.query_async(&mut c).await,
                    }
                }
            })
            .await
    }

    /// Starts a scan on every primary at once; the answer names each node.
    async fn cluster_start(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
        let cmd = self.command(0);
        let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let value = self.routed(cmd, routing).await?;
        let per_node: Vec<(String, (u64, Vec<String>))> =
            redis::from_redis_value(value).map_err(|e| map_err(e.into()))?;
        let mut keys = Vec::new();
        let mut nodes = Vec::new();
        for (addr, (cursor, batch)) in per_node {
            keys.extend(batch);
            if cursor != 0 {
                let (host, port) = split_addr(&addr)?;
                nodes.push((host, port, cursor));
            }
        }
        self.state = ScanState::Cluster(nodes);
        Ok(Some(keys))
    }

    /// Continues the scan of one node.
    async fn cluster_next(
        &mut self,
        mut nodes: Vec<(String, u16, u64)>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
        let Some((host, port, cursor)) = nodes.pop() else {
            return Ok(None);
        };
        let cmd = self.command(cursor);
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port,
        });
        let value = self.routed(cmd, routing).await?;
        let (next, keys): (u64, Vec<String>) =
            redis::from_redis_value(value).map_err(|e| map_err(e.into()))?;
        if next != 0 {
            nodes.push((host, port, next));
        }
        self.state = ScanState::Cluster(nodes);
        Ok(Some(keys))
    }
}

#[cfg(feature = "cluster")]
fn split_addr(addr: &str) -> Result<(String, u16), StoreError> {
    addr.rsplit_once(':')
        .and_then(|(host, port)| {
            Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
        })
        .ok_or_else(|| StoreError::Other(Box::new(crate::codec::Malformed("cluster node address"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configurations_are_refused() {
        for prefix in ["", "a{b", "}", "{x}"] {
            assert!(matches!(
                RedisConfig::new("redis://127.0.0.1")
                    .key_prefix(prefix)
                    .build(),
                Err(ConfigError::InvalidPrefix)
            ));
        }
        assert!(matches!(
            RedisConfig::new("redis://127.0.0.1")
                .operation_timeout(Duration::ZERO)
                .build(),
            Err(ConfigError::ZeroTimeout("operation"))
        ));
        assert!(matches!(
            RedisConfig::new("redis://127.0.0.1")
                .connect_timeout(Duration::ZERO)
                .build(),
            Err(ConfigError::ZeroTimeout("connect"))
        ));
        assert!(matches!(
            RedisConfig::new("not a url").build(),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert!(RedisConfig::new("redis://127.0.0.1:6379/2").build().is_ok());
    }

    #[test]
    fn resp3_unless_the_url_says_otherwise() {
        let protocol = |url: &str| {
            connection_info(url)
                .map(|info| info.redis_settings().protocol())
                .ok()
        };
        assert_eq!(protocol("redis://127.0.0.1"), Some(ProtocolVersion::RESP3));
        assert_eq!(
            protocol("redis://127.0.0.1/1?protocol=resp2"),
            Some(ProtocolVersion::RESP2)
        );
        assert_eq!(
            protocol("redis://h:1/?a=b&protocol=2"),
            Some(ProtocolVersion::RESP2)
        );
        assert_eq!(
            protocol("redis://h/?protocol=resp3"),
            Some(ProtocolVersion::RESP3)
        );
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn a_cluster_needs_nodes() {
        assert!(matches!(
            RedisConfig::cluster(Vec::<String>::new()).build(),
            Err(ConfigError::NoNodes)
        ));
        assert!(
            RedisConfig::cluster(["redis://127.0.0.1:7000"])
                .build()
                .is_ok()
        );
        assert_eq!(
            split_addr("[::1]:7000").ok(),
            Some(("::1".to_owned(), 7000))
        );
    }

    #[test]
    fn debug_hides_the_url() {
        let config = RedisConfig::new("redis://user:hunter2@127.0.0.1:6379");
        assert!(!format!("{config:?}").contains("hunter2"));
        let conn = config.build().map_err(|e| e.to_string());
        assert!(!format!("{conn:?}").contains("hunter2"));
    }
}
