//! The binary as a user runs it: `participant add`, `serve` on a real socket, `upload` with its exit
//! codes, `audit verify`; on a fresh SQLite file, and two servers on one PostgreSQL database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

mod browser;
mod failover;
mod faults;

const BIN: &str = env!("CARGO_BIN_EXE_numlink");

fn numlink(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).current_dir(dir).args(args).env_remove("NUMLINK_DB").output().expect("run numlink")
}

fn json_line(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A running server; killed on drop.
struct Server {
    child: Child,
    base: String,
    /// The server's log lines after "listening", as they come.
    logs: std::sync::Mutex<std::sync::mpsc::Receiver<Value>>,
}

impl Server {
    /// Blocks until the server logs `message` (a line not yet waited for), at most 30 s.
    fn wait_for_log(&self, message: &str) -> Value {
        let logs = self.logs.lock().unwrap();
        loop {
            let line = logs
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("the server did not log {message:?} within 30 s: {e}"));
            if line["message"] == message {
                return line;
            }
        }
    }
}

impl Server {
    /// The lines logged as `message` so far (those not yet waited for), without waiting for more.
    fn logged(&self, message: &str) -> Vec<Value> {
        let logs = self.logs.lock().unwrap();
        std::iter::from_fn(|| logs.try_recv().ok()).filter(|line| line["message"] == message).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `numlink serve` on a free port and waits for its "listening" log line (no sleeping).
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// `serve` with more flags.
fn serve_with(dir: &Path, flags: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-loopback-webhooks"])
        .args(flags)
        .env("NUMLINK_LOG", "info")
        .env_remove("NUMLINK_DB")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start numlink serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("the server exits before listening").expect("read stderr");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["message"] == "numlink is listening" {
            break v["listen"].as_str().expect("listen field").to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe; the lines go to whoever waits.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                // What went wrong is in the test's output.
                if v["level"] == "ERROR" || v["level"] == "WARN" {
                    eprintln!("{line}");
                }
                let _ = tx.send(v);
            }
        }
    });
    Server { child, base: format!("http://{addr}"), logs: std::sync::Mutex::new(rx) }
}

#[test]
fn a_carrier_uploads_and_a_bank_checks_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let carrier = json_line(&numlink(
        d,
        &[
            "participant",
            "add",
            "--role",
            "carrier",
            "--name",
            "Carrier A",
            "--prefix",
            "+86138",
            "--reporting-since",
            "2020-01-01",
        ],
    ));
    let bank = json_line(&numlink(d, &["participant", "add", "--role", "institution", "--name", "Bank"]));
    let carrier_key = carrier["apiKey"].as_str().unwrap();
    let bank_key = bank["apiKey"].as_str().unwrap();
    assert!(carrier["id"].as_str().unwrap().starts_with("car_"));
    // The embedded default: the database and its hash key, private, in the working directory.
    assert!(d.join("numlink.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("numlink.db.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Only carriers take prefixes.
    let bad = numlink(d, &["participant", "add", "--role", "institution", "--name", "X", "--prefix", "+1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("only carriers"));

    let server = serve(d);
    std::fs::write(d.join("events.csv"), "event_id,phone_number,type,date\ne1,+8613800138000,disconnected,2024-02-25\ne2,+8613800138000,activated,2024-09-21\ne3,+86bad,activated,2024-09-21\n").unwrap();
    let up = numlink(d, &["upload", "events.csv", "--server", &server.base, "--key", carrier_key]);
    let job = json_line(&up);
    assert_eq!(
        (job["state"].as_str(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("succeeded"), Some(2), Some(1)),
        "{job}"
    );
    assert!(String::from_utf8_lossy(&up.stderr).contains("/rejections"));

    // A file rejected as a whole: non-zero exit, and the reason.
    std::fs::write(d.join("wrong.csv"), "number,when\n+8613800138000,2024-02-25\n").unwrap();
    let up = numlink(d, &["upload", "wrong.csv", "--server", &server.base, "--key", carrier_key]);
    assert!(!up.status.success());
    assert!(String::from_utf8_lossy(&up.stdout).contains("INVALID_ARGUMENT"));
    // A bank's key cannot upload lifecycle files; it uploads binding files.
    let up = numlink(d, &["upload", "events.csv", "--server", &server.base, "--key", bank_key]);
    assert!(!up.status.success());
    std::fs::write(
        d.join("bindings.csv"),
        "account_ref,phone_number,bound_on\nacct-1,+8613800138000,2023-12-22\nacct-2,+86bad,2023-12-22\n",
    )
    .unwrap();
    let up = numlink(d, &["upload", "bindings.csv", "--kind", "bindings", "--server", &server.base, "--key", bank_key]);
    let job = json_line(&up);
    assert_eq!(
        (job["kind"].as_str(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("bindings"), Some(1), Some(1)),
        "{job}"
    );

    // A check file: uploaded, answered, downloaded.
    std::fs::write(
        d.join("checks.csv"),
        "phone_number,date\n+8613800138000,2023-12-22\n+8613800138000,2024-10-01\nnope,2024-01-01\n",
    )
    .unwrap();
    let out =
        numlink(d, &["check-file", "checks.csv", "--server", &server.base, "--key", bank_key, "-o", "answers.csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(d.join("answers.csv")).unwrap(),
        "phone_number,date,answer\n+8613800138000,2023-12-22,yes\n+8613800138000,2024-10-01,no\nnope,2024-01-01,INVALID_ARGUMENT\n"
    );
    let job = json_line(&out);
    assert_eq!(
        (job["state"].as_str(), job["accepted"].as_u64(), job["rejected"].as_u64()),
        (Some("succeeded"), Some(2), Some(1))
    );
    assert!(!d.join("answers.part").exists(), "the partial download is renamed");

    // The check, over a real socket.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/number-recycling/v0.2/check", server.base))
            .bearer_auth(bank_key)
            .json(&serde_json::json!({"phoneNumber": "+8613800138000", "specifiedDate": "2023-12-22"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(answer, serde_json::json!({"phoneNumberRecycled": true}));
    let metrics = runtime
        .block_on(async { reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap() });
    assert!(metrics.contains("numlink_checks_total"), "{metrics}");
    drop(server);

    let verify = json_line(&numlink(d, &["audit", "verify"]));
    assert_eq!(verify["firstBroken"], Value::Null);
    let listed = numlink(d, &["participant", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 2);
}

/// What a local HTTP receiver got: (path, body).
type Got = tokio::sync::mpsc::UnboundedReceiver<(String, Value)>;

/// A receiver on a free local port standing in for the carrier's SMS gateway (`/sms`) and the bank's
/// webhook endpoint (`/hook`); every request it gets arrives on the channel.
async fn local_receiver() -> (String, Got) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((uri.path().to_string(), serde_json::from_slice(&body).unwrap_or(Value::Null)));
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, rx)
}

/// The next request the receiver gets on `path`, waiting at most 30 s for the server's background
/// workers to send it.
async fn next_on(got: &mut Got, path: &str) -> Value {
    let wait = async {
        loop {
            let (p, body) = got.recv().await.expect("the receiver is running");
            if p == path {
                return body;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait).await.expect("nothing arrived in 30 s")
}

#[test]
fn a_new_holder_unbinds_the_previous_holders_bank_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |args: &[&str]| json_line(&numlink(d, &[&["participant", "add"], args].concat()));
    let carrier =
        add(&["--role", "carrier", "--name", "Carrier A", "--prefix", "+86138", "--reporting-since", "2020-01-01"]);
    let bank = add(&["--role", "institution", "--name", "Old Bank"]);
    let regulator = add(&["--role", "regulator", "--name", "Regulator"]);
    let (carrier_key, bank_key, regulator_key) =
        (carrier["apiKey"].as_str().unwrap(), bank["apiKey"].as_str().unwrap(), regulator["apiKey"].as_str().unwrap());
    let server = serve(d);
    let base = server.base.clone();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut req = http.request(method, format!("{base}{path}"));
        if !key.is_empty() {
            req = req.bearer_auth(key);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let n = "+8613800138000";
    let attestation = runtime.block_on(async {
        let (receiver, mut got) = local_receiver().await;
        use reqwest::Method as M;
        // The carrier's gateway, and the number's history: a previous holder, then the current one.
        let (s, _) =
            call(M::PUT, "/v1/sms-gateway", carrier_key, Some(serde_json::json!({"url": format!("{receiver}/sms")})))
                .await;
        assert_eq!(s, 200);
        let events = serde_json::json!({"events": [
            {"eventId": "a1", "phoneNumber": n, "type": "activated", "date": "2021-03-01"},
            {"eventId": "d1", "phoneNumber": n, "type": "disconnected", "date": "2024-09-01"},
            {"eventId": "a2", "phoneNumber": n, "type": "activated", "date": "2025-01-15"}]});
        let (s, r) = call(M::POST, "/v1/lifecycle-events", carrier_key, Some(events)).await;
        assert_eq!((s, r["accepted"].as_u64()), (200, Some(3)), "{r}");
        // The previous holder's bank, with a webhook endpoint and the old binding (stale now).
        let (s, _) = call(
            M::POST,
            "/v1/webhook-endpoints",
            bank_key,
            Some(serde_json::json!({"url": format!("{receiver}/hook")})),
        )
        .await;
        assert_eq!(s, 201);
        let binding =
            serde_json::json!({"bindings": [{"accountRef": "card-0042", "phoneNumber": n, "boundOn": "2022-05-01"}]});
        let (s, r) = call(M::POST, "/v1/bindings", bank_key, Some(binding)).await;
        assert_eq!((s, r["results"][0]["stale"].as_bool()), (200, Some(true)), "{r}");

        // The new holder: a code by SMS at the gateway, a session, the bank, one request.
        let (s, r) = call(M::POST, "/v1/holder/otp", "", Some(serde_json::json!({"phoneNumber": n}))).await;
        assert_eq!(s, 201, "{r}");
        let challenge = r["challengeId"].as_str().unwrap().to_string();
        let sms = next_on(&mut got, "/sms").await;
        assert_eq!(sms["phoneNumber"], n);
        let code: String = sms["text"].as_str().unwrap().chars().take(6).collect();
        let body = serde_json::json!({"phoneNumber": n, "challengeId": challenge, "code": code});
        let (s, r) = call(M::POST, "/v1/holder/session", "", Some(body)).await;
        assert_eq!(s, 201, "{r}");
        let token = r["token"].as_str().unwrap().to_string();
        let (_, r) = call(M::GET, "/v1/holder/bindings", &token, None).await;
        assert_eq!(r["institutions"][0]["name"], "Old Bank", "{r}");
        let (s, r) = call(M::POST, "/v1/holder/unbind-requests", &token, Some(serde_json::json!({"all": true}))).await;
        assert_eq!(s, 201, "{r}");
        let request_id = r["requests"][0]["id"].as_str().unwrap().to_string();

        // The bank's webhooks: the stale binding's notifications, then the request with the proof.
        let hook = loop {
            let hook = next_on(&mut got, "/hook").await;
            if hook["type"] == "unbind.requested" {
                break hook;
            }
        };
        assert_eq!(hook["data"]["unbindRequestId"], request_id.as_str());
        let (s, r) = call(
            M::POST,
            &format!("/v1/unbind-requests/{request_id}/resolve"),
            bank_key,
            Some(serde_json::json!({"outcome": "unbound"})),
        )
        .await;
        assert_eq!((s, r["bindingsRemoved"].as_u64()), (200, Some(1)), "{r}");
        let (_, r) = call(M::GET, "/v1/holder/unbind-requests", &token, None).await;
        assert_eq!(r["requests"][0]["state"], "unbound", "{r}");
        let (_, r) = call(M::GET, "/v1/reports/institutions", regulator_key, None).await;
        assert_eq!(r["institutions"][0]["resolved"], 1, "{r}");
        // The bank keeps the published keys, to verify offline.
        let (_, jwks) = call(M::GET, "/.well-known/jwks.json", "", None).await;
        std::fs::write(d.join("jwks.json"), jwks.to_string()).unwrap();
        hook["data"]["attestation"].as_str().unwrap().to_string()
    });
    drop(server);

    // Offline, from the saved keys: the proof verifies and states the number; altered, it does not.
    let out = numlink(d, &["attestation", "verify", &attestation, "--jwks", "jwks.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((claims["phone_number"].as_str(), claims["held_since"].as_str()), (Some(n), Some("2025-02-01")));
    let mut altered = attestation.into_bytes();
    let i = altered.len() - 10;
    altered[i] = if altered[i] == b'a' { b'b' } else { b'a' };
    let out = numlink(d, &["attestation", "verify", std::str::from_utf8(&altered).unwrap(), "--jwks", "jwks.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
    assert_eq!(json_line(&numlink(d, &["audit", "verify"]))["firstBroken"], Value::Null);
}

/// A server that lets no result be followed (`followed_results_max = 0`): `check-file` waits for the
/// job's end and fetches the whole result instead.
#[test]
fn check_file_waits_for_the_whole_result_when_it_may_not_follow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("numlink.toml"), "[limits]\nfollowed_results_max = 0\n").unwrap();
    let bank = json_line(&numlink(d, &["participant", "add", "--role", "institution", "--name", "Bank"]));
    let key = bank["apiKey"].as_str().unwrap();
    let server = serve(d);
    // Long enough that the job is still running when the CLI asks to follow it.
    let rows = 100_000;
    let mut csv = String::from("phone_number,date\nnope,2024-01-01\n");
    csv.push_str(&"+8613800138000,2023-12-22\n".repeat(rows - 1));
    std::fs::write(d.join("checks.csv"), csv).unwrap();
    let out = numlink(d, &["check-file", "checks.csv", "--server", &server.base, "--key", key, "-o", "answers.csv"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("followed_results_max") && stderr.contains("waiting for the job to end"), "{stderr}");
    let answers = std::fs::read_to_string(d.join("answers.csv")).unwrap();
    let mut expected = String::from("phone_number,date,answer\nnope,2024-01-01,INVALID_ARGUMENT\n");
    expected.push_str(&"+8613800138000,2023-12-22,no_data\n".repeat(rows - 1));
    assert!(
        answers == expected,
        "{} lines, starting {:?}",
        answers.lines().count(),
        &answers[..200.min(answers.len())]
    );
    assert_eq!(json_line(&out)["state"], "succeeded");
}

/// The server's peak resident memory (VmHWM), in KiB.
#[cfg(target_os = "linux")]
fn peak_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).expect("the server's status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM in kB")
}

/// A check file with one field of 300 MiB: the row is cut off as its bytes arrive and answered with its
/// code, the rows around it are answered, nothing of it reaches the result, and the server's peak
/// memory stays far below the field's size.
#[cfg(target_os = "linux")]
#[test]
fn an_oversized_field_is_cut_off_as_it_is_read() {
    use std::io::Write;
    const FIELD_MIB: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bank = json_line(&numlink(d, &["participant", "add", "--role", "institution", "--name", "Bank"]));
    let key = bank["apiKey"].as_str().unwrap();
    let server = serve(d);
    let mut f = std::io::BufWriter::new(std::fs::File::create(d.join("checks.csv")).unwrap());
    f.write_all(b"phone_number,date\n+8613800138000,2023-12-22\n+86").unwrap();
    let mib = vec![b'9'; 1 << 20];
    for _ in 0..FIELD_MIB {
        f.write_all(&mib).unwrap();
    }
    f.write_all(b",2024-01-01\n+8613800138000,2024-10-01\n").unwrap();
    f.flush().unwrap();
    drop(f);
    let out = numlink(d, &["check-file", "checks.csv", "--server", &server.base, "--key", key, "-o", "answers.csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers = std::fs::read_to_string(d.join("answers.csv")).unwrap();
    assert!(
        answers
            == "phone_number,date,answer\n+8613800138000,2023-12-22,no_data\n,,INVALID_ARGUMENT\n+8613800138000,2024-10-01,no_data\n",
        "{} bytes: {:?}…",
        answers.len(),
        &answers[..answers.len().min(200)]
    );
    let peak_mib = peak_rss_kib(&server) / 1024;
    eprintln!("numlink serve's peak resident memory: {peak_mib} MiB, for a field of {FIELD_MIB} MiB");
    assert!(peak_mib < 128, "the server's peak resident memory was {peak_mib} MiB");
    let rejections =
        reqwest_get(&format!("{}/v1/jobs/{}/rejections", server.base, json_line(&out)["id"].as_str().unwrap()), key);
    assert!(rejections.contains("\n3,INVALID_ARGUMENT,row is longer than"), "{rejections}");
}

fn reqwest_get(url: &str, key: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap().text().await.unwrap()
    })
}

/// A bank's endpoint taking batches, at `numlink webhook-receiver` as the README starts it: a server
/// delivers three disconnections as one signed CloudEvents batch, and the receiver prints each event on
/// its own line, verified, under the batch's webhook id.
#[test]
fn the_webhook_receiver_prints_a_batchs_events_a_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |args: &[&str]| json_line(&numlink(d, &[&["participant", "add"], args].concat()));
    let carrier =
        add(&["--role", "carrier", "--name", "Carrier A", "--prefix", "+86138", "--reporting-since", "2020-01-01"]);
    let bank = add(&["--role", "institution", "--name", "Bank"]);
    let (carrier_key, bank_key) = (carrier["apiKey"].as_str().unwrap(), bank["apiKey"].as_str().unwrap());
    let server = serve(d);
    let base = server.base.clone();
    // The receiver's port: a free one, taken and given back.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Value| {
        let req = http.post(format!("{base}{path}")).bearer_auth(key).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (s, endpoint) = runtime.block_on(post(
        "/v1/webhook-endpoints",
        bank_key,
        serde_json::json!({"url": format!("http://127.0.0.1:{port}/hook"), "batchEvents": 10}),
    ));
    assert_eq!((s, endpoint["batchEvents"].as_u64()), (201, Some(10)), "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap();
    let mut receiver = Command::new(BIN)
        .args(["webhook-receiver", "--listen", &format!("127.0.0.1:{port}"), "--secret", secret])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start numlink webhook-receiver");
    let mut said = BufReader::new(receiver.stderr.take().unwrap()).lines();
    let ready = said.next().expect("the receiver says where it listens").unwrap();
    assert!(ready.contains(&format!("127.0.0.1:{port}")), "{ready}");
    // A probe's GET is no delivery: answered 405, printed nowhere (the first line below is the batch's).
    let probe = runtime.block_on(http.get(format!("http://127.0.0.1:{port}/")).send()).unwrap();
    assert_eq!(probe.status(), 405);
    let numbers: Vec<String> = (1..=3).map(|i| format!("+861380013800{i}")).collect();
    let bindings: Vec<Value> = numbers
        .iter()
        .map(|n| serde_json::json!({"accountRef": format!("acct-{n}"), "phoneNumber": n, "boundOn": "2023-01-01"}))
        .collect();
    assert_eq!(runtime.block_on(post("/v1/bindings", bank_key, serde_json::json!({"bindings": bindings}))).0, 200);
    let events: Vec<Value> = numbers
        .iter()
        .map(|n| serde_json::json!({"eventId": format!("d-{n}"), "phoneNumber": n, "type": "disconnected", "date": "2024-02-25"}))
        .collect();
    let (s, r) = runtime.block_on(post("/v1/lifecycle-events", carrier_key, serde_json::json!({"events": events})));
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(3)), "{r}");
    // The three lines, as the receiver prints them, each waited for at most 30 s.
    let (tx, printed) = std::sync::mpsc::channel();
    let stdout = receiver.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line)));
        }
    });
    let lines: Vec<Value> = (0..3)
        .map(|i| {
            printed
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("the receiver printed {i} lines of 3 within 30 s: {e}"))
        })
        .collect();
    let _ = receiver.kill();
    let _ = receiver.wait();
    let batch_id = lines[0]["webhookId"].as_str().unwrap();
    assert!(batch_id.starts_with("bat_"), "{}", lines[0]);
    let mut accounts: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert_eq!((l["verified"].as_bool(), l["webhookId"].as_str()), (Some(true), Some(batch_id)), "{l}");
            assert_eq!(l["event"]["type"], "number.disconnected", "{l}");
            l["event"]["data"]["accountRef"].as_str().unwrap()
        })
        .collect();
    accounts.sort();
    let expected: Vec<String> = numbers.iter().map(|n| format!("acct-{n}")).collect();
    assert_eq!(accounts, expected.iter().map(String::as_str).collect::<Vec<_>>());
}

/// POSTs JSON with a key and extra headers: the status, the `numlink-position` and the body.
fn post_json(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    key: &str,
    headers: &[(&str, String)],
    body: Value,
) -> (u16, u64, Value) {
    runtime.block_on(async {
        let mut req = reqwest::Client::new().post(url).bearer_auth(key).json(&body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let position = resp.headers()["numlink-position"].to_str().unwrap().parse().unwrap();
        (status, position, resp.json().await.unwrap_or(Value::Null))
    })
}

/// Two servers on one PostgreSQL database, as behind a load balancer: events reported to either are
/// answered by the other from the position the write answered with; one is killed (SIGKILL) while the
/// other takes events, and once started again answers them too; the audit log verifies.
#[test]
fn two_servers_on_one_postgres_answer_each_others_events_across_a_kill() {
    let Some(db) = store::testing::TestDb::postgres() else { return };
    let store::DbUrl::Postgres(url) = &db.url else { unreachable!("a PostgreSQL test database") };
    let key = "ef".repeat(32);
    let common = ["--db", url.as_str(), "--hash-key", key.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let (da, db_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db_dir).unwrap();
    let add = |args: &[&str]| json_line(&numlink(&da, &[&["participant", "add"], args, &common].concat()));
    let carrier =
        add(&["--role", "carrier", "--name", "Carrier A", "--prefix", "+86138", "--reporting-since", "2020-01-01"]);
    let bank = add(&["--role", "institution", "--name", "Bank"]);
    let (carrier, bank) = (carrier["apiKey"].as_str().unwrap(), bank["apiKey"].as_str().unwrap());
    let a = serve_with(&da, &common);
    let mut b = serve_with(&db_dir, &common);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let number = |i: u32| format!("+86138001{i:05}");
    // Each number: disconnected, then given to someone else; reported through either server.
    let report = |server: &Server, first: u32, count: u32, tag: &str| -> u64 {
        let events: Vec<Value> = (first..first + count)
            .flat_map(|i| {
                [
                    serde_json::json!({"eventId": format!("{tag}-{i}-off"), "phoneNumber": number(i), "type": "disconnected", "date": "2024-02-25"}),
                    serde_json::json!({"eventId": format!("{tag}-{i}-on"), "phoneNumber": number(i), "type": "activated", "date": "2024-09-21"}),
                ]
            })
            .collect();
        let (status, position, body) = post_json(
            &runtime,
            &format!("{}/v1/lifecycle-events", server.base),
            carrier,
            &[],
            serde_json::json!({ "events": events }),
        );
        assert_eq!((status, body["accepted"].as_u64()), (200, Some(2 * u64::from(count))), "{body}");
        position
    };
    let recycled = |server: &Server, i: u32, position: u64| -> bool {
        let (status, _, body) = post_json(
            &runtime,
            &format!("{}/number-recycling/v0.2/check", server.base),
            bank,
            &[("numlink-min-position", position.to_string())],
            serde_json::json!({"phoneNumber": number(i), "specifiedDate": "2024-01-01"}),
        );
        assert_eq!(status, 200, "{body}");
        body["phoneNumberRecycled"].as_bool().unwrap()
    };
    let on_a = report(&a, 0, 40, "a");
    assert!((0..40).all(|i| recycled(&b, i, on_a)), "node B answers node A's events");
    let on_b = report(&b, 40, 40, "b");
    assert!((40..80).all(|i| recycled(&a, i, on_b)), "node A answers node B's events");
    assert!(!recycled(&b, 99, on_b), "a number no one reported is the same holder's");

    // Node B dies; node A goes on taking events; B, started again, answers them.
    drop(b);
    let while_down = report(&a, 80, 40, "down");
    b = serve_with(&db_dir, &common);
    assert!((0..120).all(|i| recycled(&b, i, while_down)), "the restarted node B knows every event");
    // And follows node A's from there on.
    let after = report(&a, 120, 40, "after");
    assert!((120..160).all(|i| recycled(&b, i, after)), "the restarted node B follows node A");
    drop((a, b));
    let verify = json_line(&numlink(&da, &[&["audit", "verify"], &common[..]].concat()));
    assert_eq!(verify["firstBroken"], Value::Null, "{verify}");
}
