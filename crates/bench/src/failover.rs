//! `bench writes`: a caller's writes through a failover. Posts batches of ten lifecycle events to
//! nodes A and B in turn, as a load balancer would, each as soon as the one before is acknowledged; a
//! batch that is not acknowledged (the node answers 503, or its connection fails) is sent again, the
//! same events, to the other node, until it is. Prints one JSON line: the batches acknowledged, the
//! attempts refused, the longest wait between two acknowledgements, and, given `--mark FILE` holding
//! the moment (unix milliseconds) `cargo xtask bench` stopped the primary, how long after it the first
//! write was acknowledged (the end of the first wait over 50 ms that ends after it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::follow::Conn;

fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub fn run(args: &[String]) -> Result<()> {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port = |name: &str| -> Result<u16> {
        arg(name).with_context(|| format!("{name} PORT"))?.parse().context(name.to_string())
    };
    let ports = [port("--a")?, port("--b")?];
    let carrier = arg("--carrier").context("--carrier KEY")?;
    let secs: f64 = arg("--secs").map_or(Ok(12.0), |v| v.parse()).context("--secs S")?;
    let started = Instant::now();
    let mut conns: [Option<Conn>; 2] = [None, None];
    let (mut acked, mut refused, mut node) = (0u64, 0u64, 0usize);
    let (mut last_ack, mut longest, mut longest_end) = (unix_ms(), 0.0f64, 0.0f64);
    // Every wait of over 50 ms between acknowledgements: (when it ended, how long), unix ms.
    let mut gaps: Vec<(f64, f64)> = Vec::new();
    let mut batch = 0u64;
    while started.elapsed().as_secs_f64() < secs {
        let events: Vec<_> = (0..10)
            .map(|k| {
                let n = batch * 10 + k;
                json!({"eventId": format!("fo-{n}"), "phoneNumber": format!("+86138{:08}", 70_000_000 + n), "type": "disconnected", "date": "2024-02-25"})
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let conn = match &mut conns[node] {
                Some(c) => c,
                slot => match Conn::open(ports[node]) {
                    Ok(c) => slot.insert(c),
                    Err(_) => {
                        refused += 1;
                        node = 1 - node;
                        continue;
                    }
                },
            };
            match conn.post("/v1/lifecycle-events", &carrier, "", &body) {
                Ok(r) if r.status == 200 => {
                    // Sent again after a failure, the events already taken are duplicates.
                    let v: serde_json::Value = serde_json::from_str(&r.body).context("the answer to a batch")?;
                    let taken = v["accepted"].as_u64().unwrap_or(0) + v["duplicates"].as_u64().unwrap_or(0);
                    if taken != 10 {
                        bail!("a batch was not taken whole: {:.300}", r.body);
                    }
                    break;
                }
                Ok(r) if r.status == 503 => refused += 1,
                Ok(r) => bail!("a batch was refused: {} {:.300}", r.status, r.body),
                Err(_) => {
                    refused += 1;
                    conns[node] = None;
                }
            }
            if Instant::now() > deadline {
                bail!("a batch was not acknowledged within 120 s");
            }
            node = 1 - node;
            // A caller's pause before sending again.
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = unix_ms();
        if now - last_ack > longest {
            (longest, longest_end) = (now - last_ack, now);
        }
        if now - last_ack > 50.0 {
            gaps.push((now, now - last_ack));
        }
        last_ack = now;
        acked += 1;
        batch += 1;
        node = 1 - node;
    }
    // When the caller (`cargo xtask bench`) stopped the primary, if it wrote that down: the first
    // acknowledgement after it ends the first wait that ends after it.
    let mark: Option<f64> =
        arg("--mark").and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| t.trim().parse().ok());
    let first_after_mark = mark.and_then(|m| gaps.iter().find(|(end, _)| *end > m).map(|(end, _)| end - m));
    println!(
        "{}",
        json!({
            "batches": acked,
            "refused": refused,
            "longest_wait_ms": longest,
            "longest_wait_end_unix_ms": longest_end,
            "waits_over_50_ms": gaps.len(),
            "first_ack_after_mark_ms": first_after_mark,
        })
    );
    Ok(())
}
