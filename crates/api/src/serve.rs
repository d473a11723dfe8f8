//! Serving the router on a socket with the limits a server facing the internet needs, which axum's own
//! `serve` does not set: a connection that sends no complete request headers in time is closed (an
//! idle keep-alive connection and a slow header alike), a request body that stalls or trickles is cut
//! off, and connections are capped per client (an IPv4 address or an IPv6 /64) and in all, so that one
//! client holding sockets open cannot starve the others (or the health check) of file descriptors.
//!
//! HTTP/1.1 only, as the router is built.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::admit::TrustedProxies;
use crate::limit::client_key;

/// Connection limits, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// A request's headers must be complete within this long of the connection opening, or of the
    /// response before it: an idle connection and a client sending its headers slowly are closed
    /// after it alike.
    pub header_timeout_ms: u64,
    /// A request body that sends nothing for this long is cut off (408); so is one that, after this
    /// long, has averaged fewer than `body_bytes_per_sec_min`.
    pub body_timeout_ms: u64,
    pub body_bytes_per_sec_min: u64,
    /// A response the client does not read for this long (its writes stalled) is cut off, and its
    /// connection closed.
    pub write_timeout_ms: u64,
    /// Connections open at once from one client (an IPv4 address, or an IPv6 /64); more are closed
    /// as they are accepted.
    pub connections_per_client_max: u32,
    /// Connections open at once in all. The last tenth are kept for clients holding few
    /// (fewer than [`FEW_CONNECTIONS`]): a flood from many clients does not shut out a health check.
    pub connections_max: u32,
}

/// Connections a client may hold and still be let in when the server is nearly full.
pub const FEW_CONNECTIONS: u32 = 4;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout_ms: 30_000,
            body_timeout_ms: 30_000,
            body_bytes_per_sec_min: 1_024,
            write_timeout_ms: 30_000,
            connections_per_client_max: 256,
            connections_max: 10_000,
        }
    }
}

/// Why a request body was cut off: it stalled, or came slower than the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled or came too slowly (body_timeout_ms, body_bytes_per_sec_min)")]
pub struct BodyTimeout;

/// The answer to a request whose body was cut off.
pub fn body_timed_out() -> crate::ApiError {
    crate::ApiError::new(
        crate::ErrorCode::RequestTimeout,
        "the request body stalled or came too slowly: it was cut off (body_timeout_ms, body_bytes_per_sec_min)",
    )
}

/// Whether an error reading a request body is a [`BodyTimeout`], however deep in its sources.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

pin_project_lite::pin_project! {
    /// A request body that must keep coming: no gap between its frames longer than the timeout, and
    /// after the first timeout's worth of time, on average at least the minimum rate.
    pub struct TimedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        deadline: Sleep,
        started: Instant,
        received: u64,
        timeout: Duration,
        bytes_per_sec_min: u64,
    }
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, timeout: Duration, bytes_per_sec_min: u64) -> TimedBody<B> {
        let started = Instant::now();
        TimedBody {
            inner,
            deadline: tokio::time::sleep_until(started + timeout),
            started,
            received: 0,
            timeout,
            bytes_per_sec_min,
        }
    }
}

impl<B> hyper::body::Body for TimedBody<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                }
                // The next frame is due within the timeout, and no later than the minimum rate allows
                // for what has come so far.
                let now = Instant::now();
                let rate_ends =
                    (*this.received).checked_div(*this.bytes_per_sec_min).map_or(Duration::MAX, Duration::from_secs);
                let by_rate = this.started.checked_add(*this.timeout).and_then(|t| t.checked_add(rate_ends));
                let next = by_rate.map_or(now + *this.timeout, |r| r.min(now + *this.timeout));
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes may not stall: a client that stops reading its response is cut off after
/// the write timeout (reads are the header and body timeouts' business).
pub struct TimedIo<T> {
    inner: T,
    stalled: Pin<Box<Sleep>>,
    /// Armed while a write waits.
    armed: bool,
    timeout: Duration,
}

impl<T> TimedIo<T> {
    pub fn new(inner: T, timeout: Duration) -> TimedIo<T> {
        TimedIo { inner, stalled: Box::pin(tokio::time::sleep(timeout)), armed: false, timeout }
    }

    /// After a write's `Pending`: cut off once it has waited the timeout.
    fn stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        if !self.armed {
            self.armed = true;
            let at = Instant::now() + self.timeout;
            self.stalled.as_mut().reset(at);
        }
        match self.stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing of its response for the write timeout (write_timeout_ms)",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write's outcome: a wait arms the timer, anything else disarms it.
    fn written<R>(&mut self, cx: &mut Context<'_>, polled: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        match polled {
            Poll::Pending => self.stall(cx),
            done => {
                self.armed = false;
                done
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for TimedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.written(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Connections open, per client and in all.
#[derive(Debug, Default)]
struct Open {
    total: u32,
    per_client: HashMap<IpAddr, u32>,
}

/// A connection's place in [`Open`], given back when it closes.
struct Slot {
    client: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// A trusted proxy (`proxy`) carries many clients' connections: only the cap in all applies to it.
fn take_slot(open: &Arc<Mutex<Open>>, client: IpAddr, proxy: bool, limits: &ServeLimits) -> Option<Slot> {
    let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
    let mine = o.per_client.get(&client).copied().unwrap_or(0);
    let reserved = (limits.connections_max / 10).max(1);
    let nearly_full = o.total >= limits.connections_max.saturating_sub(reserved);
    if o.total >= limits.connections_max
        || (!proxy && (mine >= limits.connections_per_client_max || (nearly_full && mine >= FEW_CONNECTIONS)))
    {
        return None;
    }
    o.total += 1;
    o.per_client.insert(client, mine + 1);
    Some(Slot { client, open: open.clone() })
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in progress finish
/// (idle connections close at once). Client addresses reach the handlers as `ConnectInfo<SocketAddr>`
/// (and, resolved through the `trusted` proxies, as [`crate::admit::ClientAddr`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    trusted: TrustedProxies,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open: Arc<Mutex<Open>> = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_timeout_ms));
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let the open connections close some.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = client_key(addr.ip());
        let Some(slot) = take_slot(&open, client, trusted.trusts(addr.ip()), &limits) else {
            tracing::debug!(%client, "connection refused: too many open from this client or in all");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let timeout = Duration::from_millis(limits.body_timeout_ms);
            let mut req = req.map(|b| axum::body::Body::new(TimedBody::new(b, timeout, limits.body_bytes_per_sec_min)));
            req.extensions_mut().insert(ConnectInfo(addr));
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|never| match never {})) }
        });
        let io = TimedIo::new(stream, Duration::from_millis(limits.write_timeout_ms));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::{BodyExt, StreamBody};

    type Chunks = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

    /// A body fed through a channel, timed.
    fn body(
        timeout_ms: u64,
        rate: u64,
    ) -> (Chunks, impl hyper::body::Body<Data = Bytes, Error = axum::BoxError> + Unpin) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let frames = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let timed = TimedBody::new(StreamBody::new(Box::pin(frames)), Duration::from_millis(timeout_ms), rate);
        (tx, Box::pin(timed))
    }

    async fn next(b: &mut (impl hyper::body::Body<Data = Bytes, Error = axum::BoxError> + Unpin)) -> Result<u64, bool> {
        match b.frame().await {
            Some(Ok(f)) => Ok(f.data_ref().map_or(0, |d| d.len() as u64)),
            Some(Err(e)) => Err(is_body_timeout(e.as_ref())),
            None => Ok(0),
        }
    }

    fn bytes(n: usize) -> Result<Frame<Bytes>, Infallible> {
        Ok(Frame::data(Bytes::from(vec![b'x'; n])))
    }

    /// A client that reads nothing of its response: the write is cut off after the timeout (on tokio's
    /// paused clock), and one that reads is not.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_is_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, mut client) = tokio::io::duplex(1024);
        let mut io = TimedIo::new(server, Duration::from_millis(1_000));
        let big = vec![b'x'; 64 * 1024];
        let err = io.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        // Read as it comes: no timeout, however long the whole takes.
        let (server, client2) = tokio::io::duplex(1024);
        let mut io = TimedIo::new(server, Duration::from_millis(1_000));
        let reader = tokio::spawn(async move {
            let mut client2 = client2;
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                match client2.read(&mut buf).await.unwrap() {
                    0 => return got.len(),
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        io.write_all(&big).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap(), big.len());
        let _ = client.read(&mut [0u8; 1]).await;
    }

    /// On tokio's paused clock: time moves only when every task waits, so no test sleeps for real.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_off() {
        let (tx, mut b) = body(1_000, 100);
        tx.send(bytes(10)).await.unwrap();
        assert_eq!(next(&mut b).await, Ok(10));
        // Nothing more: cut off after the timeout.
        assert_eq!(next(&mut b).await, Err(true));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_cut_off_and_a_steady_one_is_not() {
        // 100 bytes a second at least, after the first second: 10 bytes every 200 ms is 50 a second.
        let (tx, mut b) = body(1_000, 100);
        let slow = tokio::spawn(async move {
            for _ in 0..100 {
                if tx.send(bytes(10)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut got = 0;
        let cut = loop {
            match next(&mut b).await {
                Ok(n) => got += n,
                Err(timed_out) => break timed_out,
            }
        };
        assert!(cut, "cut off");
        // By the deadline's formula, at 1 s + got/100 s: well before the 100 frames were sent.
        assert!(got < 200, "{got} bytes before it was cut off");
        slow.abort();
        // 40 bytes every 200 ms (200 a second) goes through to its end.
        let (tx, mut b) = body(1_000, 100);
        tokio::spawn(async move {
            for _ in 0..50 {
                tx.send(bytes(40)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut got = 0;
        while let Some(f) = b.frame().await {
            got += f.expect("no timeout").data_ref().map_or(0, |d| d.len());
        }
        assert_eq!(got, 2_000);
    }
}
