//! `bench soak`: a server held under a mixed load for minutes (`cargo xtask soak`). First the load's
//! peak is measured (every worker sending as fast as it is answered); then the same mix is sent at
//! half that rate, on a fixed schedule, for the minutes asked. Each request's latency is counted from
//! when the schedule meant to send it (a server falling behind is not hidden by the load waiting for
//! it). The mix, per 100 requests: 74 CAMARA checks, 10 batches of bindings then events (5 numbers
//! bound, disconnected and taken again, so that each notifies the bank's webhook endpoint), 10
//! batches of bindings, 5 batch checks of 100 numbers, 1 holder's code request. Every minute: requests, errors,
//! p50 and p99; every 5 s the server's resident memory. Prints one JSON object.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::crash::Conn;

/// A number of the soak: +86138 2 and seven digits.
fn number(i: u32) -> String {
    format!("+861382{i:07}")
}

struct Load<'a> {
    carrier: &'a str,
    bank: &'a str,
    /// Numbers handed out so far (each bound, then its history reported).
    next: AtomicU32,
    /// Numbers whose history was acknowledged: checks ask about them.
    reported: AtomicU32,
}

impl Load<'_> {
    /// The `k`-th request of the mix; `Ok(true)` when answered as it should be.
    fn one(&self, conn: &mut Conn, k: u64) -> Result<bool> {
        let json = |v: Value| v.to_string().into_bytes();
        let (path, key, body, ok): (&str, Option<&str>, Vec<u8>, u16) = match k % 100 {
            0..74 => {
                let n =
                    (k.wrapping_mul(2_654_435_761) % u64::from(self.reported.load(Ordering::Relaxed).max(1))) as u32;
                let body = json(json!({"phoneNumber": number(n), "specifiedDate": "2024-01-01"}));
                ("/number-recycling/v0.2/check", Some(self.bank), body, 200)
            }
            74..84 => {
                let first = self.next.fetch_add(5, Ordering::Relaxed);
                let b: Vec<Value> = (first..first + 5)
                    .map(|i| json!({"accountRef": format!("soak-{i}"), "phoneNumber": number(i), "boundOn": "2023-01-01"}))
                    .collect();
                let (s, _) = conn.request("POST", "/v1/bindings", Some(self.bank), &json(json!({ "bindings": b })))?;
                if s != 200 {
                    return Ok(false);
                }
                let e: Vec<Value> = (first..first + 5)
                    .flat_map(|i| {
                        [
                            json!({"eventId": format!("s{i}-off"), "phoneNumber": number(i), "type": "disconnected", "date": "2024-02-25"}),
                            json!({"eventId": format!("s{i}-on"), "phoneNumber": number(i), "type": "activated", "date": "2024-09-21"}),
                        ]
                    })
                    .collect();
                let (s, _) =
                    conn.request("POST", "/v1/lifecycle-events", Some(self.carrier), &json(json!({ "events": e })))?;
                self.reported.fetch_max(first + 5, Ordering::Relaxed);
                return Ok(s == 200);
            }
            84..94 => {
                let first = self.next.fetch_add(5, Ordering::Relaxed);
                let b: Vec<Value> = (first..first + 5)
                    .map(|i| json!({"accountRef": format!("soak-{i}"), "phoneNumber": number(i), "boundOn": "2023-01-01"}))
                    .collect();
                ("/v1/bindings", Some(self.bank), json(json!({ "bindings": b })), 200)
            }
            94..99 => {
                let reported = self.reported.load(Ordering::Relaxed).max(1);
                let items: Vec<Value> = (0..100u32)
                    .map(|j| json!({"phoneNumber": number((k as u32).wrapping_add(j * 7919) % reported), "date": "2024-01-01"}))
                    .collect();
                ("/v1/reassignment-checks", Some(self.bank), json(json!({ "items": items })), 200)
            }
            _ => {
                let n = (k % u64::from(self.reported.load(Ordering::Relaxed).max(1))) as u32;
                ("/v1/holder/otp", None, json(json!({"phoneNumber": number(n)})), 201)
            }
        };
        let (s, _) = conn.request("POST", path, key, &body)?;
        Ok(s == ok)
    }
}

/// The resident memory of process `pid`, in KiB: in all (`VmRSS`), and its anonymous part (`RssAnon`:
/// the heap and stacks; the rest is files mapped, chiefly the SQLite database the writer reads through
/// a memory map, which the kernel takes back when it needs the room).
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

/// Nearest-rank percentile of sorted microseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

pub fn run(args: &[String]) -> Result<()> {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = arg("--port").context("--port N")?.parse()?;
    let pid: u32 = arg("--pid").context("--pid PID (the server's)")?.parse()?;
    let carrier = arg("--carrier").context("--carrier KEY")?;
    let bank = arg("--bank").context("--bank KEY")?;
    let minutes: u64 = arg("--minutes").unwrap_or_else(|| "10".into()).parse()?;
    let peak_secs: u64 = arg("--peak-secs").unwrap_or_else(|| "20".into()).parse()?;
    const WORKERS: u64 = 16;
    let load = Load { carrier: &carrier, bank: &bank, next: AtomicU32::new(0), reported: AtomicU32::new(0) };
    // Numbers to check from the start: 2,000 bound and reported (the mix's 74th request: bindings,
    // then their events).
    let mut conn = Conn::new(port);
    for _ in 0..400 {
        ensure!(load.one(&mut conn, 74)?, "seeding the registry failed");
    }

    // The peak: every worker as fast as it is answered.
    let done = AtomicU64::new(0);
    let k = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                let mut conn = Conn::new(port);
                while started.elapsed() < Duration::from_secs(peak_secs) {
                    let _ = load.one(&mut conn, k.fetch_add(1, Ordering::Relaxed));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let peak = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let rate = peak / 2.0;
    eprintln!("peak {peak:.0} requests/s; soaking at {rate:.0}/s for {minutes} min");

    // The soak: the same mix at half the peak, on a fixed schedule shared by the workers.
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * 60.0 * minutes as f64) as u64;
    let minutes_n = minutes as usize;
    let latencies: Vec<Mutex<Vec<u64>>> = (0..minutes_n).map(|_| Mutex::new(Vec::new())).collect();
    let errors: Vec<AtomicU64> = (0..minutes_n).map(|_| AtomicU64::new(0)).collect();
    let next = AtomicU64::new(0);
    let rss: Mutex<Vec<(f64, u64, u64)>> = Mutex::new(Vec::new());
    let soak_started = Instant::now();
    let finished = std::sync::atomic::AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !finished.load(Ordering::Relaxed) {
                if let Some((all, anon)) = rss_kib(pid) {
                    rss.lock().unwrap().push((soak_started.elapsed().as_secs_f64(), all, anon));
                }
                // A sample every 5 s (this thread only watches).
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until && !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = Conn::new(port);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return;
                        }
                        let due = soak_started + interval.mul_f64(i as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            // The schedule's pace, not a wait for the server.
                            std::thread::sleep(wait);
                        }
                        let answered = load.one(&mut conn, k.fetch_add(1, Ordering::Relaxed));
                        let minute = ((due - soak_started).as_secs() / 60) as usize;
                        let Some(slot) = latencies.get(minute) else { continue };
                        slot.lock().unwrap().push(due.elapsed().as_micros() as u64);
                        if !matches!(answered, Ok(true)) {
                            errors[minute].fetch_add(1, Ordering::Relaxed);
                            let mut first = first_error.lock().unwrap();
                            if first.is_none() {
                                *first = Some(format!("{answered:?}"));
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        finished.store(true, Ordering::Relaxed);
    });
    let per_minute: Vec<Value> = latencies
        .iter()
        .zip(&errors)
        .enumerate()
        .map(|(m, (l, e))| {
            let mut l = l.lock().unwrap().clone();
            l.sort_unstable();
            json!({"minute": m + 1, "requests": l.len(), "errors": e.load(Ordering::Relaxed),
                   "p50Ms": percentile(&l, 0.50), "p99Ms": percentile(&l, 0.99)})
        })
        .collect();
    let rss = rss.into_inner().unwrap();
    // Warm-up: the first minute. Growth: the last sample against the first after it.
    let warm_sample = rss.iter().find(|s| s.0 >= 60.0).or(rss.first()).copied().unwrap_or_default();
    let last_sample = rss.last().copied().unwrap_or_default();
    let (warm, last) = (warm_sample.1, last_sample.1);
    let (warm_anon, last_anon) = (warm_sample.2, last_sample.2);
    let errors_total: u64 = errors.iter().map(|e| e.load(Ordering::Relaxed)).sum();
    let p99 = |m: &Value| m["p99Ms"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{}",
        json!({
            "peakPerSec": peak, "ratePerSec": rate, "minutes": minutes, "requests": total,
            "errors": errors_total, "firstError": first_error.into_inner().unwrap(),
            "p99FirstMinuteMs": per_minute.first().map(p99), "p99LastMinuteMs": per_minute.last().map(p99),
            "p99Ratio": per_minute.last().map(p99).unwrap_or(f64::NAN) / per_minute.first().map(p99).unwrap_or(f64::NAN),
            "rssAfterWarmUpKib": warm, "rssEndKib": last,
            "rssGrowth": if warm > 0 { (last as f64 - warm as f64) / warm as f64 } else { f64::NAN },
            "anonAfterWarmUpKib": warm_anon, "anonEndKib": last_anon,
            "anonGrowth": if warm_anon > 0 { (last_anon as f64 - warm_anon as f64) / warm_anon as f64 } else { f64::NAN },
            "notifiedNumbers": load.reported.load(Ordering::Relaxed),
            "perMinute": per_minute,
            "rssSamples": rss.iter().map(|(t, all, anon)| json!([t.round(), all, anon])).collect::<Vec<_>>(),
        })
    );
    Ok(())
}
