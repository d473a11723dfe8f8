//! A real HTTP receiver on a local port, standing in for an institution's webhook endpoint or a
//! carrier's SMS gateway, and an independent Standard Webhooks verifier.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

/// What the receiver answers next.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    RetryAfter(u16, &'static str),
    Redirect,
    /// Never answers: the sender's timeout must end the attempt.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    script: Arc<Mutex<VecDeque<Reply>>>,
    got: Arc<Mutex<Vec<Received>>>,
    /// Told of every request that arrives.
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    pub fn then(&self, replies: &[Reply]) {
        self.script.lock().unwrap().extend(replies.iter().cloned());
    }
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived in all, at most `within`; whether they did. (Woken by each
    /// arrival: no polling.)
    pub async fn wait_for(&self, n: usize, within: std::time::Duration) -> bool {
        let arrived = async {
            loop {
                let next = self.arrived.notified();
                if self.got.lock().unwrap().len() >= n {
                    return;
                }
                next.await;
            }
        };
        tokio::time::timeout(within, arrived).await.is_ok()
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The reply is taken in the order the requests are recorded (one lock over both), so the n-th
    // request received gets the n-th reply scripted, however requests race.
    let next = {
        let mut script = r.script.lock().unwrap();
        r.got.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body: body.to_vec() });
        script.pop_front().unwrap_or(Reply::Status(200))
    };
    r.arrived.notify_waiters();
    match next {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Reply::RetryAfter(s, after) => (StatusCode::from_u16(s).unwrap(), [("retry-after", after)]).into_response(),
        Reply::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
        Reply::Hang => std::future::pending::<Response>().await,
    }
}

/// A receiver on 127.0.0.1 on a free port; its URL.
pub async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = Router::new().fallback(receive).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, format!("http://{addr}/hook"))
}

/// The Standard Webhooks verification, written from the specification, independent of numlink's signer.
pub fn verify(secret: &str, r: &Received) -> usize {
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"].to_str().unwrap().split(' ').filter(|s| *s == expected).count()
}
