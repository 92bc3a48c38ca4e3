//! The HTTP/1.1 accept loop, with the limits `axum::serve` does not have (S13):
//! a header read timeout (which also closes idle keep-alive connections), a
//! body read timeout, a cap on request head size, a cap on open connections,
//! and a bounded drain at shutdown.
//!
//! docs/CONFIGURATION.md ("Slow clients and connection limits") explains how an
//! application that embeds auth-axum can do the same.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use auth_core::log_sampling::{LogSampler, LogSampling};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt;
use tracing::Level;

/// hyper's smallest read buffer.
const MIN_BUF: usize = 8192;

/// The connection limits; `cli.rs` documents each default.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time to receive a whole request head, counted from when the connection
    /// starts waiting for it: a new connection, or a kept-alive one after its
    /// last response (so this is also the idle keep-alive timeout).
    pub(crate) header_read_timeout: Duration,
    /// Time to receive a request body, from the end of its head.
    pub(crate) body_read_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger ones
    /// get 431 and the connection is closed.
    pub(crate) max_header_bytes: usize,
    /// Connections open at once; the ones beyond are closed as they arrive.
    pub(crate) max_connections: usize,
    /// After a shutdown signal, how long open connections may finish their
    /// requests before they are closed.
    pub(crate) shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most
/// the grace period and closes what is left.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (close, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    // A flood of refused connections would write a line each: sampled (S9).
    let log = LogSampler::new(LogSampling::default());
    const REFUSED: &str = "connection limit reached: closing new connections";
    const FAILED: &str = "accepting a connection failed";
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, most likely: wait, don't spin.
                        if log.sample(Level::WARN, FAILED, None) {
                            tracing::warn!(error = %err, "{FAILED}");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    if log.sample(Level::WARN, REFUSED, None) {
                        tracing::warn!("{REFUSED}");
                    }
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let body_timeout = limits.body_read_timeout;
                let service = service_fn(move |request| {
                    handle(app.clone(), peer, body_timeout, request)
                });
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let mut closing = closing.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    let mut connection = std::pin::pin!(connection);
                    tokio::select! {
                        result = connection.as_mut() => log_end(result),
                        _ = closing.changed() => {
                            // Finish the request in progress, then close.
                            connection.as_mut().graceful_shutdown();
                            log_end(connection.await);
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(
        open,
        grace_secs = limits.shutdown_grace.as_secs_f64(),
        "shutting down: no new connections; finishing requests in progress"
    );
    let _ = close.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace period over: closing the connections still open"
        );
        connections.shutdown().await;
    }
}

async fn handle(
    app: Router,
    peer: SocketAddr,
    body_timeout: Duration,
    request: hyper::Request<Incoming>,
) -> Result<axum::response::Response, Infallible> {
    let mut request = request.map(|body| Body::new(Deadline::new(body, body_timeout)));
    request.extensions_mut().insert(ConnectInfo(peer));
    app.oneshot(request).await
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        // Timeouts, resets and oversized heads: the client's doing, not ours.
        tracing::debug!(error = %err, "connection closed");
    }
}

/// A request body that fails once its deadline passes before it has ended.
struct Deadline {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("request body not received in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
