//! `bench follow`: how far a second node's answers trail the first node's writes, over HTTP, while
//! loaders post lifecycle events to the first as fast as it takes them. A probe reports one event to
//! node A, and as soon as A acknowledges it asks node B for that number with A's `numlink-position` in
//! `numlink-min-position`: B answers once it has followed the commit, so the probe's time is the
//! follow lag as a caller meets it (plus one check's round trip). Prints one JSON line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

/// One keep-alive HTTP/1.1 connection: enough of a client for JSON requests with a length.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) position: Option<u64>,
    pub(crate) body: String,
}

impl Conn {
    pub(crate) fn open(port: u16) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to port {port}"))?;
        s.set_nodelay(true)?;
        Ok(Conn { reader: BufReader::new(s.try_clone()?), writer: s })
    }

    pub(crate) fn post(&mut self, path: &str, key: &str, extra: &str, body: &str) -> Result<Answer> {
        write!(
            self.writer,
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
        let (mut length, mut position) = (0usize, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse()?,
                    "numlink-position" => position = v.trim().parse().ok(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Answer { status, position, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

/// A number of +86138 (eight digits after it) as the n-th of the run's own block.
fn number(block: u64, n: u64) -> String {
    format!("+86138{:08}", (block + n) % 100_000_000)
}

pub fn run(args: &[String]) -> Result<()> {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port = |name: &str| -> Result<u16> {
        arg(name).with_context(|| format!("{name} PORT"))?.parse().context(name.to_string())
    };
    let (a, b) = (port("--a")?, port("--b")?);
    let carrier = arg("--carrier").context("--carrier KEY")?;
    let bank = arg("--bank").context("--bank KEY")?;
    let secs: f64 = arg("--secs").map_or(Ok(20.0), |v| v.parse()).context("--secs S")?;
    let loaders: u64 = arg("--loaders").map_or(Ok(2), |v| v.parse()).context("--loaders N")?;
    let stop = AtomicBool::new(false);
    let events = AtomicU64::new(0);
    let started = Instant::now();
    let lags = std::thread::scope(|s| -> Result<Vec<f64>> {
        let workers: Vec<_> = (0..loaders)
            .map(|i| {
                let (stop, events, carrier) = (&stop, &events, &carrier);
                s.spawn(move || -> Result<()> {
                    let mut c = Conn::open(a)?;
                    let block = 10_000_000 * (i + 1);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<_> = (n..n + 1000)
                            .map(|k| json!({"eventId": format!("load-{i}-{k}"), "phoneNumber": number(block, k), "type": "disconnected", "date": "2024-02-25"}))
                            .collect();
                        let r = c.post("/v1/lifecycle-events", carrier, "", &json!({ "events": batch }).to_string())?;
                        if r.status != 200 || !r.body.contains("\"accepted\":1000") {
                            bail!("a loader's batch was not taken whole: {} {:.300}", r.status, r.body);
                        }
                        events.fetch_add(1000, Ordering::Relaxed);
                        n += 1000;
                    }
                    Ok(())
                })
            })
            .collect();
        let probe = || -> Result<Vec<f64>> {
            let (mut ca, mut cb) = (Conn::open(a)?, Conn::open(b)?);
            let mut lags = Vec::new();
            let mut j = 0;
            while started.elapsed().as_secs_f64() < secs {
                let n = number(90_000_000, j);
                let event = json!({"events": [{"eventId": format!("probe-{j}"), "phoneNumber": n, "type": "disconnected", "date": "2024-02-25"}]});
                let r = ca.post("/v1/lifecycle-events", &carrier, "", &event.to_string())?;
                let position = r
                    .position
                    .filter(|_| r.status == 200)
                    .with_context(|| format!("the probe's event: {} {}", r.status, r.body))?;
                let acked = Instant::now();
                let check = json!({"phoneNumber": n, "specifiedDate": "2024-01-01"}).to_string();
                let r = cb.post(
                    "/number-recycling/v0.2/check",
                    &bank,
                    &format!("numlink-min-position: {position}\r\n"),
                    &check,
                )?;
                lags.push(acked.elapsed().as_secs_f64() * 1000.0);
                if r.status != 200 || !r.body.contains("true") {
                    bail!("node B answered from before node A's write: {} {}", r.status, r.body);
                }
                j += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(lags)
        };
        let lags = probe();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a loader panicked"))??;
        }
        lags
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut sorted = lags.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| {
        sorted
            .get(((sorted.len() as f64 * f) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        json!({
            "events_per_s": events.load(Ordering::Relaxed) as f64 / elapsed,
            "probes": sorted.len(),
            "lag_ms_p50": q(0.5),
            "lag_ms_p99": q(0.99),
            "lag_ms_max": sorted.last().copied().unwrap_or(f64::NAN),
        })
    );
    Ok(())
}
