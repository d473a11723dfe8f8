//! `bench crash`: the crash loop (`cargo xtask crash`). A real `numlink serve` takes a mixed load
//! (lifecycle events and files, bindings and binding files, checks and check files, holders' codes,
//! sessions and unbind requests, the bank's answers, webhook deliveries to a real receiver) and is
//! killed with SIGKILL at a random moment, started again, and checked:
//!
//! - every acknowledged write exists exactly once (a write whose reply was lost is sent again after
//!   the restart, as a caller would, and must then be a duplicate or take effect once);
//! - every notification the events call for exists once, and is delivered or waiting;
//! - every job ends, with exact counts;
//! - the checks answer as the acknowledged history says, and the index a start builds (from its
//!   snapshot and the changes since) is the index a read of every number builds (`numlink index
//!   verify`);
//! - `numlink audit verify` passes; SQLite's `integrity_check` (or PostgreSQL's amcheck) is clean;
//! - every code acknowledged reaches the SMS outbox.
//!
//! At the end, every notification has reached the receiver, signed. Prints a JSON line per cycle and
//! one for the run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

/// One request on a connection of its own (`Connection: close`): the server may die under it.
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: crash\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no status line"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string()))))
}

/// One keep-alive connection, for the checks (the server is up then): a request after another.
pub(crate) struct Conn {
    port: u16,
    stream: Option<std::io::BufReader<TcpStream>>,
}

impl Conn {
    pub(crate) fn new(port: u16) -> Conn {
        Conn { port, stream: None }
    }

    fn once(&mut self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> std::io::Result<(u16, Value)> {
        use std::io::BufRead;
        if self.stream.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port))?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            s.set_nodelay(true)?;
            self.stream = Some(std::io::BufReader::new(s));
        }
        let r = self.stream.as_mut().expect("connected");
        let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: crash\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        r.get_mut().write_all(head.as_bytes())?;
        r.get_mut().write_all(body)?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no status line"))?;
        let mut length = 0;
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut bytes = vec![0; length];
        r.read_exact(&mut bytes)?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// A request, on a new connection if the kept one was closed.
    pub(crate) fn request(&mut self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Result<(u16, Value)> {
        match self.once(method, path, key, body) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stream = None;
                Ok(self.once(method, path, key, body)?)
            }
        }
    }

    fn get(&mut self, path: &str, key: &str) -> Result<Value> {
        let (status, body) = self.request("GET", path, Some(key), b"")?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        Ok(body)
    }
}

/// A number of the run: +86138 1 and seven digits.
fn number(i: u32) -> String {
    format!("+861381{i:07}")
}

fn encoded(i: u32) -> String {
    number(i).replace('+', "%2B")
}

/// A write the load sent: acknowledged, or to be sent again after the restart.
#[derive(Clone, Debug)]
enum Write {
    /// The bank binds `acct-<i>` to each number (bound on 2023-01-01).
    Bindings(Vec<u32>),
    /// The carrier reports each number disconnected (2024-02-25) and taken again (2024-09-21).
    Events(Vec<u32>),
    /// A lifecycle file (`file` names it) of the numbers' histories, with `bad` rows rejected.
    LifecycleFile { file: u32, numbers: Vec<u32>, bad: u32 },
    /// A binding file of the numbers, with `bad` rows rejected.
    BindingFile { file: u32, numbers: Vec<u32>, bad: u32 },
    /// A check file of the numbers (each answered `yes`).
    CheckFile { numbers: Vec<u32> },
    /// A code asked for the number.
    Code(u32),
    /// The bank answers the unbind request `id`: unbound.
    Resolve { id: String },
}

const LIFECYCLE_HEADER: &str = "event_id,phone_number,type,date\n";
const BINDINGS_HEADER: &str = "account_ref,phone_number,bound_on\n";

impl Write {
    fn request(&self, w: &World) -> (&'static str, String, String, &'static str, Vec<u8>) {
        let history = |i: u32| {
            [
                json!({"eventId": format!("ev-{i}-off"), "phoneNumber": number(i), "type": "disconnected", "date": "2024-02-25"}),
                json!({"eventId": format!("ev-{i}-on"), "phoneNumber": number(i), "type": "activated", "date": "2024-09-21"}),
            ]
        };
        let json_body = |v: Value| v.to_string().into_bytes();
        match self {
            Write::Bindings(ns) => {
                let b: Vec<Value> = ns
                    .iter()
                    .map(|&i| json!({"accountRef": format!("acct-{i}"), "phoneNumber": number(i), "boundOn": "2023-01-01"}))
                    .collect();
                ("POST", "/v1/bindings".into(), w.bank.clone(), "application/json", json_body(json!({ "bindings": b })))
            }
            Write::Events(ns) => {
                let e: Vec<Value> = ns.iter().flat_map(|&i| history(i)).collect();
                (
                    "POST",
                    "/v1/lifecycle-events".into(),
                    w.carrier.clone(),
                    "application/json",
                    json_body(json!({ "events": e })),
                )
            }
            Write::LifecycleFile { file, numbers, bad } => {
                let mut csv = String::from(LIFECYCLE_HEADER);
                for &i in numbers {
                    csv.push_str(&format!(
                        "ev-{i}-off,{},disconnected,2024-02-25\nev-{i}-on,{},activated,2024-09-21\n",
                        number(i),
                        number(i)
                    ));
                }
                for b in 0..*bad {
                    csv.push_str(&format!("bad-{file}-{b},+86bad,disconnected,2024-02-25\n"));
                }
                ("POST", "/v1/lifecycle-files".into(), w.carrier.clone(), "text/csv", csv.into_bytes())
            }
            Write::BindingFile { file, numbers, bad } => {
                let mut csv = String::from(BINDINGS_HEADER);
                for &i in numbers {
                    csv.push_str(&format!("acct-{i},{},2023-01-01\n", number(i)));
                }
                for b in 0..*bad {
                    csv.push_str(&format!("bad-{file}-{b},{},2023-13-01\n", number(0)));
                }
                ("POST", "/v1/binding-files".into(), w.bank.clone(), "text/csv", csv.into_bytes())
            }
            Write::CheckFile { numbers } => {
                let mut csv = String::from("phone_number,date\n");
                for &i in numbers {
                    csv.push_str(&format!("{},2024-01-01\n", number(i)));
                }
                ("POST", "/v1/check-files".into(), w.bank.clone(), "text/csv", csv.into_bytes())
            }
            Write::Code(i) => (
                "POST",
                "/v1/holder/otp".into(),
                String::new(),
                "application/json",
                json_body(json!({"phoneNumber": number(*i)})),
            ),
            Write::Resolve { id, .. } => (
                "POST",
                format!("/v1/unbind-requests/{id}/resolve"),
                w.bank.clone(),
                "application/json",
                json_body(json!({"outcome": "unbound"})),
            ),
        }
    }

    /// Sends it once: `Ok(Some(reply))` acknowledged, `Ok(None)` not answered (the server is gone or
    /// away: send it again later), `Err` an answer no caller should get.
    fn send(&self, w: &World, port: u16) -> Result<Option<Value>> {
        let (method, path, key, ct, body) = self.request(w);
        let key = Some(key.as_str()).filter(|k| !k.is_empty());
        match http(port, method, &path, key, ct, &body) {
            Ok((s, reply)) if (200..300).contains(&s) => Ok(Some(reply)),
            // A resolution sent again after its reply was lost: already answered, as it should be.
            Ok((409, reply)) if matches!(self, Write::Resolve { .. }) => Ok(Some(reply)),
            Ok((503, _)) | Err(_) => Ok(None),
            Ok((s, reply)) => bail!("{method} {path}: {s} {reply}"),
        }
    }
}

/// The run's fixed parts.
struct World {
    bin: PathBuf,
    dir: PathBuf,
    db: String,
    hash_key: String,
    carrier: String,
    bank: String,
    port: u16,
    sms: PathBuf,
}

/// What the load has had acknowledged, across every cycle.
#[derive(Default)]
struct Ledger {
    next: u32,
    next_file: u32,
    /// Numbers bound by `acct-<i>` (the API or a file).
    bound: BTreeSet<u32>,
    /// Numbers whose history was acknowledged (the API or a file).
    evented: BTreeSet<u32>,
    /// Files acknowledged: lifecycle files and binding files, whose numbers join `evented` and `bound`
    /// once their jobs have ended.
    lifecycle_files: u64,
    binding_files: u64,
    filed: Vec<(bool, Vec<u32>)>,
    /// Jobs seen to end, and the rows their lifecycle and binding files had accepted in all (a file
    /// sent again after its reply was lost is a second job, of duplicates).
    ended: BTreeSet<String>,
    accepted_events: u64,
    accepted_bindings: u64,
    /// Codes acknowledged, per number.
    codes: HashMap<u32, usize>,
    /// Unbind requests acknowledged (id → number), and those the bank's answer was acknowledged for.
    requests: BTreeMap<String, u32>,
    resolved: BTreeSet<String>,
    /// Requests seen answered after a restart: not asked about again.
    confirmed: BTreeSet<String>,
    /// Numbers whose holder has asked already.
    asked: BTreeSet<u32>,
    /// Writes sent and not answered: sent again after the restart.
    unanswered: Vec<Write>,
    /// Where the notification feed was read up to, and the (binding, type) pairs seen.
    feed_cursor: String,
    notified: HashMap<(String, String), u32>,
    notification_ids: BTreeSet<String>,
    acknowledged: u64,
}

impl Ledger {
    fn take(&mut self, n: u32) -> Vec<u32> {
        let v = (self.next..self.next + n).collect();
        self.next += n;
        v
    }

    /// Records an acknowledged write.
    fn acknowledged(&mut self, write: &Write, reply: &Value) -> Result<()> {
        self.acknowledged += 1;
        match write {
            Write::Bindings(ns) => self.bound.extend(ns),
            Write::Events(ns) => {
                let done = reply["accepted"].as_u64().unwrap_or(0) + reply["duplicates"].as_u64().unwrap_or(0);
                ensure!(done == 2 * ns.len() as u64, "events acknowledged but not all taken: {reply}");
                self.evented.extend(ns);
            }
            Write::LifecycleFile { numbers, .. } | Write::BindingFile { numbers, .. } => {
                ensure!(reply["jobId"].is_string(), "a file acknowledged without its job: {reply}");
                let lifecycle = matches!(write, Write::LifecycleFile { .. });
                if lifecycle {
                    self.lifecycle_files += 1;
                } else {
                    self.binding_files += 1;
                }
                self.filed.push((lifecycle, numbers.clone()));
            }
            Write::CheckFile { .. } => {
                ensure!(reply["jobId"].is_string(), "a file acknowledged without its job: {reply}")
            }
            Write::Code(i) => *self.codes.entry(*i).or_default() += 1,
            Write::Resolve { id, .. } => {
                self.resolved.insert(id.clone());
            }
        }
        Ok(())
    }
}

fn numlink(w: &World, args: &[&str]) -> Result<Value> {
    let out = Command::new(&w.bin)
        .current_dir(&w.dir)
        .args(args)
        .args(["--db", &w.db])
        .env("NUMLINK_HASH_KEY", &w.hash_key)
        .env("NUMLINK_LOG", "warn")
        .output()?;
    let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
    let v: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
    ensure!(out.status.success(), "numlink {args:?}: {v} {}", String::from_utf8_lossy(&out.stderr));
    Ok(v)
}

fn start(w: &World) -> Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(w.dir.join("server.log"))?;
    let child = Command::new(&w.bin)
        .current_dir(&w.dir)
        .args(["serve", "--db", &w.db, "--listen", &format!("127.0.0.1:{}", w.port), "--allow-loopback-webhooks"])
        .args(["--node-name", "crash", "--sms-outbox", &w.sms.display().to_string()])
        .env("NUMLINK_HASH_KEY", &w.hash_key)
        .env("NUMLINK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let started = Instant::now();
    // Answering once the index is built: the health check.
    while !http(w.port, "GET", "/healthz", None, "application/json", b"").is_ok_and(|(s, _)| s == 200) {
        ensure!(started.elapsed() < Duration::from_secs(60), "the server did not answer within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child)
}

/// The load, until `stop`: each thread's writes, sent once; what was not answered is returned.
fn load(w: &World, ledger: &Mutex<Ledger>, stop: &AtomicBool, seed: u64) -> Result<Vec<Write>> {
    let unanswered = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let send = |write: Write| -> Option<Value> {
        match write.send(w, w.port) {
            Ok(Some(reply)) => {
                if let Err(e) = ledger.lock().unwrap().acknowledged(&write, &reply) {
                    failure.lock().unwrap().get_or_insert(e);
                }
                Some(reply)
            }
            Ok(None) => {
                unanswered.lock().unwrap().push(write);
                None
            }
            Err(e) => {
                failure.lock().unwrap().get_or_insert(e);
                None
            }
        }
    };
    std::thread::scope(|s| {
        // Numbers: bound by the bank, then their histories reported (a notification each); a batch
        // every 10 ms or so, a bank's and a carrier's pace rather than a benchmark's.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let ns = ledger.lock().unwrap().take(5);
                if send(Write::Bindings(ns.clone())).is_none() || send(Write::Events(ns)).is_none() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        // Files: a lifecycle file, a binding file and a check file, in an order of the seed's (50 rows
        // a chunk: a kill finds them midway).
        s.spawn(|| {
            for turn in seed..seed + 3 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let write = {
                    let mut l = ledger.lock().unwrap();
                    l.next_file += 1;
                    let file = l.next_file;
                    match turn % 3 {
                        0 => Write::LifecycleFile { file, numbers: l.take(60), bad: 2 },
                        1 => Write::BindingFile { file, numbers: l.take(60), bad: 1 },
                        _ => {
                            let numbers: Vec<u32> = l.evented.iter().rev().take(40).copied().collect();
                            if numbers.is_empty() {
                                return;
                            }
                            Write::CheckFile { numbers }
                        }
                    }
                };
                if send(write).is_none() {
                    return;
                }
            }
        });
        // Checks, one at a time: a number with an acknowledged history has changed hands since 2024.
        s.spawn(|| {
            let mut k = seed as usize;
            while !stop.load(Ordering::Relaxed) {
                let i = {
                    let l = ledger.lock().unwrap();
                    if l.evented.is_empty() {
                        None
                    } else {
                        k += 7;
                        l.evented.iter().nth(k % l.evented.len()).copied()
                    }
                };
                let Some(i) = i else {
                    std::thread::yield_now();
                    continue;
                };
                let body = json!({"phoneNumber": number(i), "specifiedDate": "2024-01-01"}).to_string();
                match http(
                    w.port,
                    "POST",
                    "/number-recycling/v0.2/check",
                    Some(&w.bank),
                    "application/json",
                    body.as_bytes(),
                ) {
                    Ok((200, answer)) if answer["phoneNumberRecycled"] == true => {}
                    Ok((503, _)) | Err(_) => return,
                    Ok((s, answer)) => {
                        failure
                            .lock()
                            .unwrap()
                            .get_or_insert(anyhow::anyhow!("the check of {} answered {s} {answer}", number(i)));
                        return;
                    }
                }
            }
        });
        // Holders: a code, a session, an unbind request to the bank; the bank answers it.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let next = {
                    let l = ledger.lock().unwrap();
                    l.bound.intersection(&l.evented).find(|i| !l.asked.contains(i)).copied()
                };
                let Some(i) = next else {
                    std::thread::yield_now();
                    continue;
                };
                let before = sms_count(&w.sms, i);
                let Some(challenge) = send(Write::Code(i)) else { return };
                let Some(code) = wait_for_code(&w.sms, i, before, stop) else { return };
                let session = json!({"phoneNumber": number(i), "challengeId": challenge["challengeId"], "code": code});
                let token = match http(
                    w.port,
                    "POST",
                    "/v1/holder/session",
                    None,
                    "application/json",
                    session.to_string().as_bytes(),
                ) {
                    Ok((201, s)) => s["token"].as_str().unwrap_or_default().to_string(),
                    Ok((503, _)) | Err(_) => return,
                    Ok((s, body)) => {
                        failure
                            .lock()
                            .unwrap()
                            .get_or_insert(anyhow::anyhow!("a session for {}: {s} {body}", number(i)));
                        return;
                    }
                };
                let asked = match http(
                    w.port,
                    "POST",
                    "/v1/holder/unbind-requests",
                    Some(&token),
                    "application/json",
                    br#"{"all":true}"#,
                ) {
                    Ok((201, body)) => body,
                    Ok((503, _)) | Err(_) => return,
                    Ok((s, body)) => {
                        failure
                            .lock()
                            .unwrap()
                            .get_or_insert(anyhow::anyhow!("an unbind request for {}: {s} {body}", number(i)));
                        return;
                    }
                };
                let id = asked["requests"][0]["id"].as_str().unwrap_or_default().to_string();
                {
                    let mut l = ledger.lock().unwrap();
                    l.asked.insert(i);
                    l.requests.insert(id.clone(), i);
                    l.acknowledged += 1;
                }
                if send(Write::Resolve { id }).is_none() {
                    return;
                }
            }
        });
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    Ok(unanswered.into_inner().unwrap())
}

fn sms_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn sms_count(path: &Path, i: u32) -> usize {
    sms_lines(path).iter().filter(|m| m["phoneNumber"] == number(i).as_str()).count()
}

/// The code of the next SMS to the number, as its holder reads it off the phone.
fn wait_for_code(path: &Path, i: u32, before: usize, stop: &AtomicBool) -> Option<String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) && !stop.load(Ordering::Relaxed) {
        let messages: Vec<Value> =
            sms_lines(path).into_iter().filter(|m| m["phoneNumber"] == number(i).as_str()).collect();
        if messages.len() > before {
            let text = messages.last()?["text"].as_str()?.to_string();
            return Some(text.chars().take_while(char::is_ascii_digit).collect());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Sends every unanswered write again until it is answered (the server is back).
fn resend(w: &World, ledger: &Mutex<Ledger>) -> Result<()> {
    let pending = std::mem::take(&mut ledger.lock().unwrap().unanswered);
    for write in pending {
        let started = Instant::now();
        loop {
            if let Some(reply) = write.send(w, w.port)? {
                ledger.lock().unwrap().acknowledged(&write, &reply)?;
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(60), "{write:?} was not answered within 60 s of a restart");
            // A caller's pause before trying again (503 while the database is away), not a wait for work.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Every invariant, after a restart and the writes sent again.
/// Returns the milliseconds the API's checks took, and those of the database's (the CLI, integrity).
fn check(w: &World, ledger: &Mutex<Ledger>, touched: &BTreeSet<u32>) -> Result<(u128, u128)> {
    let mut l = ledger.lock().unwrap();
    let mut c = Conn::new(w.port);
    // Every job ends, with exact counts; a file's good rows are accepted once across its jobs.
    let started = Instant::now();
    for key in [w.carrier.clone(), w.bank.clone()] {
        let listed = c.get("/v1/jobs?limit=1000", &key)?;
        for job in listed["jobs"].as_array().context("jobs")? {
            let id = job["id"].as_str().context("a job id")?.to_string();
            if l.ended.contains(&id) {
                continue;
            }
            let job = loop {
                let job = c.get(&format!("/v1/jobs/{id}"), &key)?;
                if job["state"] == "succeeded" || job["state"] == "failed" {
                    break job;
                }
                ensure!(started.elapsed() < Duration::from_secs(120), "job {id} did not end within 120 s: {job}");
                // Waiting for the job runner, as a carrier's tool polls its job.
                std::thread::sleep(Duration::from_millis(20));
            };
            ensure!(job["state"] == "succeeded", "job {id} failed: {job}");
            let n = |k: &str| job[k].as_u64().unwrap_or(0);
            let expect = |good: u64, bad: u64| {
                ensure!(
                    n("accepted") + n("duplicates") == good && n("rejected") == bad,
                    "job {id}: {job}: expected {good} rows taken and {bad} rejected"
                );
                Ok(())
            };
            match job["kind"].as_str() {
                Some("lifecycle") => {
                    expect(120, 2)?;
                    l.accepted_events += n("accepted");
                }
                Some("bindings") => {
                    expect(60, 1)?;
                    l.accepted_bindings += n("accepted");
                }
                // A check file's rows are all answered: numbers with an acknowledged history.
                _ => ensure!(n("rejected") == 0 && n("rowsRead") > 0, "check job {id}: {job}"),
            }
            l.ended.insert(id);
        }
    }
    ensure!(
        l.accepted_events == 120 * l.lifecycle_files,
        "{} lifecycle files acknowledged, {} of their rows accepted",
        l.lifecycle_files,
        l.accepted_events
    );
    ensure!(
        l.accepted_bindings == 60 * l.binding_files,
        "{} binding files acknowledged, {} of their rows accepted",
        l.binding_files,
        l.accepted_bindings
    );
    for (lifecycle, numbers) in std::mem::take(&mut l.filed) {
        if lifecycle {
            l.evented.extend(numbers);
        } else {
            l.bound.extend(numbers);
        }
    }
    // Every acknowledged event once, and the checks answer from it.
    for &i in touched.iter().filter(|i| l.evented.contains(i)) {
        let events = c.get(&format!("/v1/lifecycle-events?phoneNumber={}", encoded(i)), &w.carrier)?;
        let mut ids: Vec<&str> =
            events["events"].as_array().context("events")?.iter().filter_map(|e| e["eventId"].as_str()).collect();
        ids.sort_unstable();
        let (off, on) = (format!("ev-{i}-off"), format!("ev-{i}-on"));
        ensure!(ids == [off.as_str(), on.as_str()], "{}'s events: {ids:?}", number(i));
        let body = json!({"phoneNumber": number(i), "specifiedDate": "2024-01-01"}).to_string();
        let (s, answer) =
            http(w.port, "POST", "/number-recycling/v0.2/check", Some(&w.bank), "application/json", body.as_bytes())?;
        ensure!(s == 200 && answer["phoneNumberRecycled"] == true, "the check of {}: {s} {answer}", number(i));
    }
    // Every acknowledged binding once (but those an unbind request's answer removed).
    let unbound: BTreeSet<u32> =
        l.requests.iter().filter(|(id, _)| l.resolved.contains(*id)).map(|(_, &i)| i).collect();
    for &i in touched.iter().filter(|i| l.bound.contains(i)) {
        let page = c.get(&format!("/v1/bindings?accountRef=acct-{i}"), &w.bank)?;
        let found = page["bindings"].as_array().map_or(0, Vec::len);
        let expected = usize::from(!unbound.contains(&i));
        ensure!(found == expected, "acct-{i}: {found} bindings, expected {expected}: {page}");
    }
    // Every unbind request, answered if its answer was acknowledged (each checked until it is).
    let unconfirmed: Vec<(String, u32)> =
        l.requests.iter().filter(|(id, _)| !l.confirmed.contains(*id)).map(|(id, &i)| (id.clone(), i)).collect();
    for (id, i) in unconfirmed {
        let r = c.get(&format!("/v1/unbind-requests/{id}"), &w.bank)?;
        let state = r["state"].as_str().unwrap_or_default();
        if l.resolved.contains(&id) {
            ensure!(state == "unbound", "request {id} of {}: {r}", number(i));
            l.confirmed.insert(id);
        }
    }
    // Every code acknowledged reaches the outbox (sent by the server's SMS sender, after a restart too).
    let waiting = Instant::now();
    loop {
        let mut sent: HashMap<String, usize> = HashMap::new();
        for m in sms_lines(&w.sms) {
            *sent.entry(m["phoneNumber"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        }
        let short = l.codes.iter().find(|(i, n)| sent.get(&number(**i)).copied().unwrap_or(0) < **n);
        let Some((&i, &n)) = short else { break };
        ensure!(waiting.elapsed() < Duration::from_secs(30), "{n} codes acknowledged for {}, fewer sent", number(i));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The notifications since the last cycle: none twice.
    loop {
        let page = c.get(&format!("/v1/notifications?after={}&limit=1000", l.feed_cursor), &w.bank)?;
        let items = page["notifications"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        for n in &items {
            let key = (
                n["data"]["bindingId"].as_str().unwrap_or_default().to_string(),
                n["type"].as_str().unwrap_or_default().to_string(),
            );
            if !n["data"]["bindingId"].is_null() {
                let seen = l.notified.entry(key.clone()).or_default();
                *seen += 1;
                ensure!(*seen == 1, "a notification twice: {key:?}");
            }
            ensure!(
                l.notification_ids.insert(n["id"].as_str().unwrap_or_default().to_string()),
                "a notification listed twice: {n}"
            );
        }
        l.feed_cursor = page["nextCursor"].as_str().unwrap_or_default().to_string();
    }
    drop(l);
    let api_ms = started.elapsed().as_millis();
    // The index a start builds is the tables'; the audit chain holds; the database is sound.
    let db_started = Instant::now();
    let index = numlink(w, &["index", "verify"])?;
    ensure!(index["equal"] == true, "the index differs from the tables: {index}");
    let audit = numlink(w, &["audit", "verify"])?;
    ensure!(audit["firstBroken"].is_null(), "the audit chain is broken: {audit}");
    integrity(&w.db)?;
    Ok((api_ms, db_started.elapsed().as_millis()))
}

/// Cuts every connection to the database but this one's (the server's writer and readers, and any
/// other client), as a network fault or a restarting pooler would.
fn cut_connections(db: &str) -> Result<()> {
    let mut c = postgres::Client::connect(db, postgres::NoTls)?;
    c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'",
        &[],
    )?;
    Ok(())
}

/// SQLite's `integrity_check`, or PostgreSQL's amcheck on every B-tree index.
fn integrity(db: &str) -> Result<()> {
    if let Some(path) = db.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        ensure!(result == "ok", "integrity_check: {result}");
    } else {
        let mut c = postgres::Client::connect(db, postgres::NoTls)?;
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")?;
        let rows = c.query(
            "SELECT c.relname, bt_index_check(c.oid, true)::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.amname = 'btree' AND n.nspname = current_schema() AND c.relpersistence <> 't'",
            &[],
        )?;
        ensure!(!rows.is_empty(), "amcheck found no index to check");
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let bin = std::fs::canonicalize(arg("--numlink").context("--numlink BIN")?).context("the numlink binary")?;
    let dir = PathBuf::from(arg("--dir").context("--dir DIR")?);
    let db = arg("--db").context("--db URL")?;
    let cycles: u64 = arg("--cycles").unwrap_or_else(|| "10".into()).parse()?;
    let mut seed: u64 = arg("--seed").map_or_else(|| Ok(std::process::id().into()), |s| s.parse())?;
    let port: u16 = arg("--port").context("--port N")?.parse()?;
    std::fs::create_dir_all(&dir)?;
    // Files in small chunks, and the index's snapshot every second: a kill finds both midway.
    std::fs::write(
        dir.join("numlink.toml"),
        "index_snapshot_secs = 1\n[limits]\nfile_chunk_rows = 50\n[rate_limits]\n\
         carrier = { per_sec = 0 }\ninstitution = { per_sec = 0 }\nanonymous_per_client = { per_sec = 0 }\n\
         [holder]\notp_requests_per_client_per_hour_max = 1000000\notp_sends_per_hour_max = 1000\n\
         otp_sends_per_day_max = 100000\notp_sends_per_number_per_day_max = 100000\n",
    )?;
    let mut w = World {
        bin,
        dir: dir.clone(),
        db,
        hash_key: "c5".repeat(32),
        carrier: String::new(),
        bank: String::new(),
        port,
        sms: dir.join("sms.jsonl"),
    };
    let carrier = numlink(
        &w,
        &[
            "participant",
            "add",
            "--role",
            "carrier",
            "--name",
            "Carrier",
            "--prefix",
            "+86138",
            "--reporting-since",
            "2020-01-01",
        ],
    )?;
    let bank = numlink(&w, &["participant", "add", "--role", "institution", "--name", "Bank"])?;
    w.carrier = carrier["apiKey"].as_str().context("carrier key")?.to_string();
    w.bank = bank["apiKey"].as_str().context("bank key")?.to_string();

    let mut server = start(&w)?;
    // The bank's endpoint, and a receiver that checks every delivery's signature.
    let receiver_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let hook = json!({"url": format!("http://127.0.0.1:{receiver_port}/hook")}).to_string();
    let (s, endpoint) =
        http(w.port, "POST", "/v1/webhook-endpoints", Some(&w.bank), "application/json", hook.as_bytes())?;
    ensure!(s == 201, "the endpoint: {s} {endpoint}");
    let received = dir.join("received.jsonl");
    let mut receiver = Command::new(&w.bin)
        .args(["webhook-receiver", "--listen", &format!("127.0.0.1:{receiver_port}")])
        .env("NUMLINK_WEBHOOK_SECRET", endpoint["secret"].as_str().context("a secret")?)
        .stdout(std::fs::File::create(&received)?)
        .stderr(Stdio::null())
        .spawn()?;

    let ledger = Mutex::new(Ledger::default());
    let run_started = Instant::now();
    for cycle in 1..=cycles {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let before = ledger.lock().unwrap().next;
        // The fault, at a random moment 20 to 1,000 ms into the load: the server killed (SIGKILL) and
        // started again; or, every other cycle on PostgreSQL, its database connections cut (in a
        // commit or not), the server left to find its way back by itself.
        let at = Duration::from_millis(20 + (seed >> 33) % 980);
        let cut = w.db.starts_with("postgres") && cycle % 2 == 0;
        let stop = Arc::new(AtomicBool::new(false));
        let restarted = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let loaded = s.spawn(|| load(&w, &ledger, &stop, seed));
            std::thread::sleep(at);
            if cut {
                cut_connections(&w.db)?;
                // The load goes on a while: writes meet the cut connections, then the new ones.
                std::thread::sleep(Duration::from_millis(100));
            } else {
                server.kill()?;
                server.wait()?;
            }
            stop.store(true, Ordering::Relaxed);
            let unanswered = loaded.join().expect("the load does not panic")?;
            ledger.lock().unwrap().unanswered.extend(unanswered);
            Ok(())
        })?;
        if !cut {
            server = start(&w)?;
        }
        let restart_ms = restarted.elapsed().as_millis();
        let resent = ledger.lock().unwrap().unanswered.len();
        resend(&w, &ledger)?;
        let after = ledger.lock().unwrap().next;
        let touched: BTreeSet<u32> = (before..after).collect();
        let (api_ms, db_ms) = check(&w, &ledger, &touched).with_context(|| format!("cycle {cycle} (seed {seed})"))?;
        let l = ledger.lock().unwrap();
        println!(
            "{}",
            json!({"cycle": cycle, "fault": if cut { "connections cut" } else { "killed" }, "afterMs": at.as_millis(),
                   "backMs": restart_ms, "resent": resent,
                   "checkApiMs": api_ms, "checkDbMs": db_ms, "acknowledged": l.acknowledged,
                   "numbers": l.next, "notifications": l.notification_ids.len()})
        );
    }
    // At the end, every notification reaches the receiver, its signature verified.
    let ids = ledger.lock().unwrap().notification_ids.clone();
    let waiting = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&received).unwrap_or_default();
        let mut delivered = BTreeSet::new();
        for line in lines.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            ensure!(v["verified"] == true, "a delivery whose signature did not verify: {line}");
            if let Some(id) = v["event"]["id"].as_str() {
                delivered.insert(id.to_string());
            }
        }
        let missing = ids.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        ensure!(
            waiting.elapsed() < Duration::from_secs(120),
            "{missing} of {} notifications not delivered within 120 s",
            ids.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = receiver.kill();
    let _ = receiver.wait();
    let l = ledger.lock().unwrap();
    println!(
        "{}",
        json!({"cycles": cycles, "seconds": run_started.elapsed().as_secs_f64(), "acknowledged": l.acknowledged,
               "numbers": l.next, "notifications": ids.len(), "unbindRequests": l.requests.len(), "ok": true})
    );
    Ok(())
}
