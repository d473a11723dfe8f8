//! The server on a real socket (`api::serve`), against clients that hold connections open: an idle
//! connection, a slow header, a stalled request body, and more connections from one client than it may
//! have, while another client's health check is answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use api::serve::ServeLimits;
use store::testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::TestApp;

/// Timeouts short enough for a test.
fn limits() -> ServeLimits {
    ServeLimits {
        header_timeout_ms: 300,
        body_timeout_ms: 300,
        body_bytes_per_sec_min: 1_024,
        write_timeout_ms: 300,
        connections_per_client_max: 3,
        connections_max: 100,
    }
}

/// Serves a fresh app on 127.0.0.1; its address, and what stops it when dropped.
async fn served(limits: ServeLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, TestApp) {
    served_with(limits, api::Limits::default()).await
}

async fn served_with(
    limits: ServeLimits,
    app_limits: api::Limits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, TestApp) {
    let app = TestApp::with_limits(TestDb::sqlite(), app_limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve::serve(listener, app.router(), limits, Default::default(), async move {
        let _ = stopped.await;
    }));
    (addr, stop, app)
}

/// A connection from the given local address (another loopback address is another client).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// `n` connections from 127.0.0.1, each answered once and then kept open, idle.
async fn hold(n: usize, addr: SocketAddr) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = connect_from("127.0.0.1", addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let got = s.read(&mut buf).await.unwrap();
        assert!(buf[..got].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    held
}

/// What the server sends until it closes the connection; `None` if it has not closed it within
/// `within` (woken by the socket, no polling).
async fn until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn an_idle_connection_and_a_slow_header_are_closed() {
    let (addr, _stop, _app) = served(limits()).await;
    // Nothing sent at all.
    let started = Instant::now();
    let mut idle = connect_from("127.0.0.1", addr).await;
    assert!(until_closed(&mut idle, Duration::from_secs(10)).await.is_some(), "closed");
    assert!(started.elapsed() >= Duration::from_millis(300), "not before the timeout");
    // Kept alive after a response, then idle.
    let mut kept = connect_from("127.0.0.1", addr).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\n\r\n").await.unwrap();
    let seen = until_closed(&mut kept, Duration::from_secs(10)).await.expect("closed once idle");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // Headers begun and never finished.
    let mut slow = connect_from("127.0.0.1", addr).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: numl").await.unwrap();
    let seen = until_closed(&mut slow, Duration::from_secs(10)).await.expect("closed");
    assert!(!seen.contains("200 OK"), "{seen}");
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_with_408() {
    let (addr, _stop, _app) = served(limits()).await;
    let mut s = connect_from("127.0.0.1", addr).await;
    s.write_all(
        b"POST /v1/holder/otp HTTP/1.1\r\nHost: numlink\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"phone",
    )
    .await
    .unwrap();
    let seen = until_closed(&mut s, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("\"code\":\"REQUEST_TIMEOUT\""), "{seen}");
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    // Timeouts long enough that the held connections stay open throughout.
    let (addr, _stop, _app) = served(ServeLimits { header_timeout_ms: 60_000, ..limits() }).await;
    // Three idle connections from one client, held.
    let held = hold(3, addr).await;
    let mut fourth = connect_from("127.0.0.1", addr).await;
    let _ = fourth.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\n\r\n").await;
    let seen = until_closed(&mut fourth, Duration::from_secs(5)).await.expect("closed at once");
    assert!(seen.is_empty(), "refused without an answer: {seen}");
    // Another client is answered meanwhile.
    let mut other = connect_from("127.0.0.2", addr).await;
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\nConnection: close\r\n\r\n").await.unwrap();
    let seen = until_closed(&mut other, Duration::from_secs(5)).await.expect("answered");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    drop(held);
}

/// A JSON body that keeps coming, but not all of it, is cut off at its deadline, however its bytes
/// trickle (here: a part, then nothing, with the stall timeout far off).
#[tokio::test]
async fn a_json_body_has_a_deadline_of_its_own() {
    let app_limits = api::Limits { json_body_timeout_ms: 300, ..api::Limits::default() };
    let (addr, _stop, _app) = served_with(ServeLimits { body_timeout_ms: 60_000, ..limits() }, app_limits).await;
    let mut s = connect_from("127.0.0.1", addr).await;
    let started = Instant::now();
    s.write_all(
        b"POST /v1/holder/otp HTTP/1.1\r\nHost: numlink\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ph",
    )
    .await
    .unwrap();
    let seen = until_closed(&mut s, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(seen.starts_with("HTTP/1.1 408") && seen.contains("REQUEST_TIMEOUT"), "{seen}");
    assert!(started.elapsed() < Duration::from_secs(30), "well before the stall timeout");
}

/// When the server is nearly full, a client that holds many connections is turned away, and one that
/// holds few is still let in.
#[tokio::test]
async fn the_last_connections_are_kept_for_clients_holding_few() {
    let limits =
        ServeLimits { header_timeout_ms: 60_000, connections_per_client_max: 100, connections_max: 10, ..limits() };
    let (addr, _stop, _app) = served(limits).await;
    let held = hold(9, addr).await;
    let mut tenth = connect_from("127.0.0.1", addr).await;
    let _ = tenth.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\n\r\n").await;
    assert_eq!(until_closed(&mut tenth, Duration::from_secs(5)).await.as_deref(), Some(""), "turned away");
    let mut light = connect_from("127.0.0.2", addr).await;
    light.write_all(b"GET /healthz HTTP/1.1\r\nHost: numlink\r\nConnection: close\r\n\r\n").await.unwrap();
    let seen = until_closed(&mut light, Duration::from_secs(5)).await.expect("answered");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    drop(held);
}
