//! The binary as a user runs it: `participant add`, `serve` on a real socket, `upload` with its exit
//! codes, `audit verify`; all on a fresh SQLite file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `numlink serve` on a free port and waits for its "listening" log line (no sleeping).
fn serve(dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-loopback-webhooks"])
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
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Server { child, base: format!("http://{addr}") }
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
