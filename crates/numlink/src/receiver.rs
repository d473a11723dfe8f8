//! `numlink webhook-receiver`: a local endpoint that prints what numlink delivers, a line per event
//! (a batch's events each on their own line), with whether each signature verifies. Only a POST is a
//! delivery: any other request (a probe's GET) is answered 405 and printed nowhere. For trying webhooks
//! on one machine (the server then needs `--allow-loopback-webhooks`); not for production.

use std::io::Write;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

async fn receive(
    State(secret): State<Option<String>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, timestamp, signatures) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let verified = secret.as_deref().map(|s| workers::webhooks::verify(s, &id, &timestamp, &signatures, &body));
    let payload: Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    // A CloudEvents batch (an endpoint with `batchEvents` above 1) is a JSON array: a line per event,
    // each with the request's webhook id and whether its signature verified.
    let events = match payload {
        Value::Array(events) => events,
        one => vec![one],
    };
    let mut out = std::io::stdout().lock();
    for event in events {
        let line = json!({"webhookId": id, "webhookTimestamp": timestamp, "verified": verified, "event": event});
        if writeln!(out, "{line}").is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    StatusCode::NO_CONTENT
}

pub async fn run(listen: &str, secret: Option<String>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("receiving webhooks at http://{}/ (Ctrl-C to stop)", listener.local_addr()?);
    let app = axum::Router::new().fallback(receive).with_state(secret);
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}
