//! Sending one-time codes: to the SMS gateway of the carrier serving the number (an HTTP POST signed
//! like a webhook, Standard Webhooks headers), or, for local use, as JSON lines appended to a file.
//!
//! A code is never stored in clear and never logged: it travels from the store's answer through an
//! in-memory queue to the gateway. A message that cannot be sent is retried a few times and then
//! dropped; the holder asks for a new code (the send limits allow for that).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use store::SmsGateway;
use tokio::sync::{Mutex, mpsc};

use crate::WorkerError;
use crate::webhooks::{DeliveryConfig, callable, guarded_client, sign};

/// Attempts per message, and the waits between them.
const RETRY_WAITS_MS: [u64; 2] = [1_000, 5_000];

/// One code on its way.
#[derive(Clone)]
pub struct SmsMessage {
    /// E.164, as the gateway needs it.
    pub phone_number: String,
    pub text: String,
    pub gateway: Option<SmsGateway>,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsMessage(<redacted>)")
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

/// The sending side, held by the API: never waits (a full queue drops the message, logged without it).
#[derive(Clone, Debug)]
pub struct SmsQueue {
    tx: mpsc::Sender<SmsMessage>,
    to_file: bool,
}

impl SmsQueue {
    /// Messages go to a file, so every holder's code is written, gateway or not.
    pub fn to_file(&self) -> bool {
        self.to_file
    }

    pub fn push(&self, m: SmsMessage) {
        if self.tx.try_send(m).is_err() {
            tracing::warn!("the SMS queue is full or closed: a code was not sent");
        }
    }
}

/// The receiving side: sends what is queued.
#[derive(Debug)]
pub struct SmsSender {
    rx: Mutex<mpsc::Receiver<SmsMessage>>,
    sink: SmsSink,
    client: reqwest::Client,
}

impl SmsSender {
    /// A queue of at most `queue_max` messages and the sender draining it.
    pub fn new(sink: SmsSink, queue_max: usize) -> Result<(SmsQueue, SmsSender), WorkerError> {
        let config = match &sink {
            SmsSink::Gateways(c) => *c,
            SmsSink::File(_) => DeliveryConfig::default(),
        };
        let client = guarded_client(&config, concat!("numlink-sms/", env!("CARGO_PKG_VERSION")))?;
        let (tx, rx) = mpsc::channel(queue_max.max(1));
        let to_file = matches!(sink, SmsSink::File(_));
        Ok((SmsQueue { tx, to_file }, SmsSender { rx: Mutex::new(rx), sink, client }))
    }

    /// Sends every message queued now, one attempt each; returns how many were sent.
    pub async fn run_once(&self) -> usize {
        let mut sent = 0;
        loop {
            let next = self.rx.lock().await.try_recv();
            let Ok(m) = next else { return sent };
            match self.send(&m).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "an SMS could not be sent"),
            }
        }
    }

    /// Sends messages as they come, each with its retries on a task of its own, until the queue closes.
    pub async fn run(self: std::sync::Arc<Self>) {
        loop {
            let next = self.rx.lock().await.recv().await;
            let Some(m) = next else { return };
            let me = self.clone();
            tokio::spawn(async move {
                let mut waits = RETRY_WAITS_MS.iter();
                loop {
                    match me.send(&m).await {
                        Ok(_) => return,
                        Err(e) => match waits.next() {
                            Some(&ms) => {
                                tracing::info!(error = %e, "an SMS could not be sent; trying again");
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            None => {
                                tracing::warn!(error = %e, "an SMS could not be sent; giving up");
                                return;
                            }
                        },
                    }
                }
            });
        }
    }

    /// One attempt; `Ok(false)` when there is nowhere to send it.
    async fn send(&self, m: &SmsMessage) -> Result<bool, String> {
        let body = json!({ "phoneNumber": m.phone_number, "text": m.text }).to_string();
        match &self.sink {
            SmsSink::File(path) => {
                let line = format!("{body}\n");
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                    f.write_all(line.as_bytes())?;
                    f.sync_data()
                })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_file_gets_one_json_line_per_code() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        let (queue, sender) = SmsSender::new(SmsSink::File(path.clone()), 10).unwrap();
        assert!(queue.to_file());
        for code in ["123456", "654321"] {
            queue.push(SmsMessage {
                phone_number: "+8613800138000".into(),
                text: format!("{code} is your code"),
                gateway: None,
            });
        }
        assert_eq!(sender.run_once().await, 2);
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], json!({"phoneNumber": "+8613800138000", "text": "654321 is your code"}));
        assert_eq!(
            format!("{:?}", SmsMessage { phone_number: "+1".into(), text: "123456".into(), gateway: None }),
            "SmsMessage(<redacted>)"
        );
    }

    #[tokio::test]
    async fn without_a_gateway_nothing_is_sent_and_a_full_queue_drops() {
        let (queue, sender) = SmsSender::new(SmsSink::Gateways(DeliveryConfig::default()), 1).unwrap();
        assert!(!queue.to_file());
        for _ in 0..3 {
            queue.push(SmsMessage { phone_number: "+8613800138000".into(), text: "1".into(), gateway: None });
        }
        assert_eq!(sender.run_once().await, 0, "one message queued, nowhere to send it; the others dropped");
    }
}
