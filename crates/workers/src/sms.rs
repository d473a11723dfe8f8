//! Sending one-time codes: to the SMS gateway of the carrier serving the number (an HTTP POST signed
//! like a webhook, Standard Webhooks headers), or, for local use, as JSON lines appended to a file.
//!
//! A code is never stored in clear and never logged: it travels from the store's answer, sealed,
//! through the database's outbox (so that any node sends it, and a node that dies leaves it to
//! another) to the gateway. A message that cannot be sent is retried a few times and then dropped,
//! as is one whose code expires first; the holder asks for a new code (the send limits allow for that).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use store::{SmsGateway, Store, StoreError};
use tokio::sync::Notify;

use crate::WorkerError;
use crate::webhooks::{DeliveryConfig, callable, guarded_client, sign};

/// The waits before the second and third attempts at a message; after the third it is dropped.
const RETRY_WAITS_SECS: [i64; 2] = [1, 5];

/// Messages claimed and sent at once, by one node; each attempt ends within the gateway's timeout,
/// well within the claim ([`store::SMS_LEASE_SECS`]).
const SENDING_AT_ONCE: u32 = 16;

/// One code on its way.
#[derive(Clone)]
pub struct SmsMessage {
    /// E.164, as the gateway needs it.
    pub phone_number: String,
    pub text: String,
    pub gateway: Option<SmsGateway>,
    /// When the code expires (unix seconds): a message not sent by then is dropped.
    pub expires_at: i64,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsMessage(<redacted>)")
    }
}

impl SmsMessage {
    fn to_json(&self) -> String {
        let gateway =
            self.gateway.as_ref().map(|g| json!({"carrierId": g.carrier_id, "url": g.url, "secret": g.secret}));
        json!({"phoneNumber": self.phone_number, "text": self.text, "gateway": gateway, "expiresAt": self.expires_at})
            .to_string()
    }

    fn from_json(text: &str) -> Option<SmsMessage> {
        let v: Value = serde_json::from_str(text).ok()?;
        let gateway = v["gateway"].as_object().and_then(|g| {
            Some(SmsGateway {
                carrier_id: g.get("carrierId")?.as_str()?.to_string(),
                url: g.get("url")?.as_str()?.to_string(),
                secret: g.get("secret")?.as_str()?.to_string(),
            })
        });
        Some(SmsMessage {
            phone_number: v["phoneNumber"].as_str()?.to_string(),
            text: v["text"].as_str()?.to_string(),
            gateway,
            expires_at: v["expiresAt"].as_i64()?,
        })
    }
}

/// Where messages go.
#[derive(Clone, Debug)]
pub enum SmsSink {
    /// The serving carrier's gateway; a message for a carrier without one is dropped.
    Gateways(DeliveryConfig),
    /// Every message, as a JSON line `{"phoneNumber", "text"}` (`numlink serve --sms-outbox FILE`).
    File(PathBuf),
}

/// The sending side, held by the API: puts a message in the outbox and wakes this node's sender.
#[derive(Clone, Debug)]
pub struct SmsQueue {
    store: Store,
    to_file: bool,
    max: u64,
    wake: Arc<Notify>,
}

impl SmsQueue {
    /// Messages go to a file, so every holder's code is written, gateway or not.
    pub fn to_file(&self) -> bool {
        self.to_file
    }

    /// Puts a message in the outbox. One the outbox has no room for is dropped, logged without it (the
    /// holder asks again). One that cannot be put there (the database away) is an error: the caller
    /// must not be told a code is on its way.
    pub async fn push(&self, m: SmsMessage) -> Result<(), StoreError> {
        if self.store.queue_sms(m.to_json(), m.expires_at, self.max).await? {
            self.wake.notify_one();
        } else {
            tracing::warn!("the SMS outbox is full: a code was not sent");
        }
        Ok(())
    }
}

/// The receiving side: sends what the outbox holds, from any node.
#[derive(Debug)]
pub struct SmsSender {
    store: Store,
    sink: SmsSink,
    client: reqwest::Client,
    wake: Arc<Notify>,
}

impl SmsSender {
    /// An outbox of at most `queue_max` messages and the sender draining it.
    pub fn new(store: Store, sink: SmsSink, queue_max: usize) -> Result<(SmsQueue, SmsSender), WorkerError> {
        let config = match &sink {
            SmsSink::Gateways(c) => *c,
            SmsSink::File(_) => DeliveryConfig::default(),
        };
        let client = guarded_client(&config, concat!("numlink-sms/", env!("CARGO_PKG_VERSION")))?;
        let to_file = matches!(sink, SmsSink::File(_));
        let wake = Arc::new(Notify::new());
        let queue = SmsQueue { store: store.clone(), to_file, max: queue_max.max(1) as u64, wake: wake.clone() };
        Ok((queue, SmsSender { store, sink, client, wake }))
    }

    /// Sends every message due now that no other node holds, one attempt each; returns how many were
    /// sent.
    pub async fn run_once(&self) -> Result<usize, WorkerError> {
        let mut sent = 0;
        // A read first: claiming is a write, and the outbox is empty most of the time.
        while self.store.sms_due().await? {
            let claimed = self.store.claim_sms(SENDING_AT_ONCE).await?;
            if claimed.is_empty() {
                return Ok(sent);
            }
            let outcomes: Vec<(i64, Option<i64>, bool)> = futures_util::stream::iter(claimed)
                .map(|(m, plain)| async move {
                    let Some(message) = plain.ok().as_deref().and_then(SmsMessage::from_json) else {
                        tracing::error!(seq = m.seq, "a message in the SMS outbox does not open: dropped");
                        return (m.seq, None, false);
                    };
                    match self.send(&message).await {
                        Ok(delivered) => (m.seq, None, delivered),
                        Err(e) => match RETRY_WAITS_SECS.get(m.attempts as usize) {
                            Some(wait) => {
                                tracing::info!(error = %e, "an SMS could not be sent; trying again");
                                (m.seq, Some(self.store.clock().now().as_second() + wait), false)
                            }
                            None => {
                                tracing::warn!(error = %e, "an SMS could not be sent; giving up");
                                (m.seq, None, false)
                            }
                        },
                    }
                })
                .buffer_unordered(SENDING_AT_ONCE as usize)
                .collect()
                .await;
            sent += outcomes.iter().filter(|o| o.2).count();
            self.store.sms_attempted(outcomes.into_iter().map(|(seq, again, _)| (seq, again)).collect()).await?;
        }
        Ok(sent)
    }

    /// Sends messages as they come (woken by this node's requests; every second for the others',
    /// and for retries) until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "sending SMS failed; trying again");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One attempt; `Ok(false)` when there is nowhere to send it.
    async fn send(&self, m: &SmsMessage) -> Result<bool, String> {
        let body = json!({ "phoneNumber": m.phone_number, "text": m.text }).to_string();
        match &self.sink {
            SmsSink::File(path) => {
                let line = format!("{body}\n");
                let path = path.clone();
                tokio::task::spawn_blocking(move || append_line(&path, &line))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("appending to the SMS outbox: {e}"))?;
                tracing::info!("a one-time code was written to the SMS outbox");
                Ok(true)
            }
            SmsSink::Gateways(config) => {
                let Some(g) = &m.gateway else { return Ok(false) };
                // Registered under another configuration, perhaps: checked again as webhooks are.
                if let Err(e) = callable(&g.url, config.allow_loopback) {
                    tracing::warn!(carrier = %g.carrier_id, error = %e, "an SMS gateway numlink does not call: the code is dropped");
                    return Ok(false);
                }
                let status = post(&self.client, g, body).await?;
                if (200..300).contains(&status) {
                    Ok(true)
                } else {
                    Err(format!("gateway of {} answered {status}", g.carrier_id))
                }
            }
        }
    }
}

/// Posts one message body to a gateway, signed; the status it answered.
async fn post(client: &reqwest::Client, g: &SmsGateway, body: String) -> Result<u16, String> {
    let id = store::new_id("sms");
    let ts = jiff::Timestamp::now().as_second();
    let signature = sign(&g.secret, &id, ts, body.as_bytes())?;
    let resp = client
        .post(&g.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("gateway of {}: {}", g.carrier_id, e.without_url()))?;
    Ok(resp.status().as_u16())
}

/// Sends one message through a carrier's gateway now, once, and says what the gateway answered: a
/// test the carrier asks for, from its console or the API. The same checks and signature as a code's.
pub async fn send_test(config: &DeliveryConfig, g: &SmsGateway, phone_number: &str, text: &str) -> Result<u16, String> {
    callable(&g.url, config.allow_loopback)?;
    let client =
        guarded_client(config, concat!("numlink-sms/", env!("CARGO_PKG_VERSION"))).map_err(|e| e.to_string())?;
    post(&client, g, json!({ "phoneNumber": phone_number, "text": text }).to_string()).await
}

/// Appends a whole line to the outbox file. A process killed while writing (SIGKILL can cut a write
/// at a page boundary) leaves a line without its end: that line is ended first, so that the next
/// message is a line of its own, readable, rather than glued to the torn one.
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let torn = f.seek(SeekFrom::End(0))? > 0 && {
        f.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        last[0] != b'\n'
    };
    let line = if torn { format!("\n{line}") } else { line.to_string() };
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_in_the_outbox_file_is_ended_before_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        append_line(&path, "{\"a\":1}\n").unwrap();
        // A process killed mid-write left half a line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"b\":").unwrap();
        append_line(&path, "{\"c\":3}\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":\n{\"c\":3}\n");
        let whole: Vec<&str> = text.lines().filter(|l| l.ends_with('}')).collect();
        assert_eq!(whole, ["{\"a\":1}", "{\"c\":3}"], "every message written whole is a line of its own");
    }
}
