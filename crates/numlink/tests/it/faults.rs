//! Faults other than a crash, against the binary: the database's disk fills up. Writes are refused
//! with `503 UNAVAILABLE` (nothing of them done), nothing acknowledged is lost, and the server takes
//! writes again by itself once there is room. (A PostgreSQL connection cut mid-commit is the crash
//! loop's other fault: `cargo xtask crash --postgres`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{json_line, numlink, serve_with};

/// A small filesystem of its own (tmpfs), unmounted on drop; `None` where the machine does not let
/// this process mount one (not root, or in a container without the right).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, mib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the disk: a file of zeros, written until there is no room.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
}

fn events(from: u32, n: u32) -> Value {
    let e: Vec<Value> = (from..from + n)
        .map(|i| json!({"eventId": format!("e{i}"), "phoneNumber": format!("+86138001{i:05}"), "type": "activated", "date": "2024-09-21"}))
        .collect();
    json!({ "events": e })
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_service_resumes_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), 16) else {
        eprintln!("SKIPPED: this machine does not let the test mount a small filesystem (tmpfs) to fill");
        return;
    };
    let d = &disk.0;
    let carrier = json_line(&numlink(
        d,
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
    ));
    let key = carrier["apiKey"].as_str().unwrap().to_string();
    let server = serve_with(d, &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let post = |body: Value| {
        let r = client.post(format!("{}/v1/lifecycle-events", server.base)).bearer_auth(&key).json(&body).send();
        runtime.block_on(async {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let (status, body) = post(events(0, 200));
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(200)), "{body}");

    // The disk fills up. Writes go on until the database needs a page it cannot have, then each is
    // refused as a whole with 503, safe to send again.
    let filler = d.join("filler");
    fill(&filler);
    // (first number, events) of every batch acknowledged.
    let mut acknowledged = vec![(0, 200)];
    let mut refused = None;
    for batch in 1..=50 {
        let body = events(batch * 1000, 500);
        match post(body.clone()) {
            (200, reply) => {
                assert_eq!(reply["accepted"].as_u64(), Some(500), "{reply}");
                acknowledged.push((batch * 1000, 500));
            }
            (status, reply) => {
                assert_eq!((status, reply["code"].as_str()), (503, Some("UNAVAILABLE")), "{reply}");
                refused = Some((batch * 1000, body));
                break;
            }
        }
    }
    let (from, refused) = refused.expect("a write was refused before 50 batches of 500 events filled 16 MiB");
    // Still refused while the disk is full, and a file upload too.
    assert_eq!(post(refused.clone()).0, 503);
    let csv = "event_id,phone_number,type,date\nf1,+8613800199999,activated,2024-09-21\n";
    let upload = runtime.block_on(async {
        let r = client
            .post(format!("{}/v1/lifecycle-files", server.base))
            .bearer_auth(&key)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    });
    assert_eq!((upload.0, upload.1["code"].as_str()), (503, Some("UNAVAILABLE")), "{}", upload.1);

    // Room again: the same write is taken, by the same server, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, reply) = post(refused);
    assert_eq!(
        (status, reply["accepted"].as_u64(), reply["duplicates"].as_u64()),
        (200, Some(500), Some(0)),
        "{reply}"
    );
    acknowledged.push((from, 500));
    // Nothing acknowledged was lost: the first and last events of every batch are there, once.
    for (from, n) in acknowledged {
        for i in [from, from + n - 1] {
            let r = runtime.block_on(async {
                let url = format!("{}/v1/lifecycle-events?phoneNumber=%2B86138001{i:05}", server.base);
                client.get(url).bearer_auth(&key).send().await.unwrap().json::<Value>().await.unwrap()
            });
            let ids: Vec<&str> = r["events"].as_array().unwrap().iter().filter_map(|e| e["eventId"].as_str()).collect();
            assert_eq!(ids, [format!("e{i}")], "{r}");
        }
    }
    drop(server);
    let verify = json_line(&numlink(d, &["audit", "verify"]));
    assert_eq!(verify["firstBroken"], Value::Null, "{verify}");
}
