//! Two `numlink serve` nodes on a PostgreSQL primary with a synchronous standby, under a mixed load
//! through both: one node is killed (SIGKILL) and started again, then the primary is stopped and the
//! standby promoted. Whatever was acknowledged is there exactly once afterwards, on the new primary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Server, json_line, local_receiver, numlink, serve_with};

/// A primary and a standby it replicates to synchronously (`synchronous_standby_names`), each a
/// throwaway cluster on a free loopback port, as the `postgres` user when run as root.
struct PgPair {
    dir: PathBuf,
    bin: PathBuf,
    ports: [u16; 2],
    as_postgres_user: bool,
}

impl PgPair {
    /// `None` (the test is skipped, and says so) where `cargo xtask test` found no PostgreSQL server
    /// binaries; a failure where they must be (`NUMLINK_TEST_PG_REQUIRED=1`).
    fn start() -> Option<PgPair> {
        let Ok(bin) = std::env::var("NUMLINK_PG_BIN") else {
            if std::env::var("NUMLINK_TEST_PG_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("NUMLINK_TEST_PG_REQUIRED=1 but NUMLINK_PG_BIN is not set: the failover test must run");
            }
            eprintln!("the failover test is SKIPPED: NUMLINK_PG_BIN is not set (run `cargo xtask test`)");
            return None;
        };
        let as_postgres_user =
            Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("numlink-failover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres_user {
            assert!(Command::new("chown").arg("postgres:").arg(&dir).status().unwrap().success());
        }
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pair = PgPair { dir, bin: PathBuf::from(bin), ports: [free(), free()], as_postgres_user };
        let (primary, standby) = (pair.data(0), pair.data(1));
        pair.pg("initdb", &["-D", &primary, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        // Every commit waits for the standby to have it: what is acknowledged is on both machines.
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nmax_connections = 100\nsynchronous_standby_names = 'standby1'\n\
             synchronous_commit = on\nunix_socket_directories = '{}'\n",
            pair.dir.display()
        );
        pair.append(&primary, "postgresql.conf", &conf);
        pair.start_cluster(0);
        let from = format!("host=127.0.0.1 port={} user=postgres", pair.ports[0]);
        pair.pg("pg_basebackup", &["-d", &from, "-D", &standby, "-X", "stream", "-R", "--no-sync"]);
        // Promoted, the standby has no standby of its own here: it must not wait for one (with two
        // standbys, each names the other; a tool such as pg_auto_failover keeps this right).
        let standby_conf =
            format!("primary_conninfo = '{from} application_name=standby1'\nsynchronous_standby_names = ''\n");
        pair.append(&standby, "postgresql.auto.conf", &standby_conf);
        pair.start_cluster(1);
        Some(pair)
    }

    fn data(&self, i: usize) -> String {
        self.dir.join(["primary", "standby"][i]).display().to_string()
    }

    fn append(&self, data: &str, file: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(Path::new(data).join(file)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn start_cluster(&self, i: usize) {
        let log = self.dir.join(format!("{}.log", ["primary", "standby"][i]));
        let opts = format!("-p {}", self.ports[i]);
        self.pg("pg_ctl", &["-D", &self.data(i), "-o", &opts, "-l", &log.display().to_string(), "-w", "start"]);
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Both servers, the one that takes writes first (`target_session_attrs=read-write`).
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&connect_timeout=2\
             &keepalives_idle=5&keepalives_interval=2&keepalives_retries=3&tcp_user_timeout=10",
            self.ports[0], self.ports[1]
        )
    }

    /// The primary's machine is lost: stopped at once, without a checkpoint.
    fn lose_primary(&self) {
        self.pg("pg_ctl", &["-D", &self.data(0), "-m", "immediate", "-w", "stop"]);
    }

    fn promote_standby(&self) {
        self.pg("pg_ctl", &["-D", &self.data(1), "-w", "promote"]);
    }
}

impl Drop for PgPair {
    fn drop(&mut self) {
        for i in 0..2 {
            let exe = self.bin.join("pg_ctl");
            let data = self.data(i);
            let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
            let _ = if self.as_postgres_user {
                Command::new("runuser").args(["-u", "postgres", "--"]).arg(exe).args(args).output()
            } else {
                Command::new(exe).args(args).output()
            };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The load's view of the nodes: their addresses, as they change when one is started again.
#[derive(Clone, Default)]
struct Nodes(Arc<Mutex<Vec<String>>>);

impl Nodes {
    fn set(&self, i: usize, base: &str) {
        let mut nodes = self.0.lock().unwrap();
        if nodes.len() <= i {
            nodes.resize(i + 1, String::new());
        }
        nodes[i] = base.to_string();
    }

    fn get(&self, i: usize) -> String {
        let nodes = self.0.lock().unwrap();
        nodes[i % nodes.len()].clone()
    }
}

/// How long a caller goes on retrying one write: through a node's restart and a failover.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// POSTs `body` as a caller who retries safely does: to node `first`, and on an error that is not an
/// answer (the node is gone, a 503) the same body again to the next node, until it is answered.
async fn post_retrying(
    client: &reqwest::Client,
    nodes: &Nodes,
    first: usize,
    path: &str,
    key: &str,
    body: &Value,
) -> Value {
    let started = Instant::now();
    let mut attempt = first;
    loop {
        let base = nodes.get(attempt);
        let mut request = client.post(format!("{base}{path}")).json(body);
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        match request.send().await {
            Ok(resp) if resp.status().is_success() => return resp.json().await.unwrap_or(Value::Null),
            Ok(resp) if resp.status().as_u16() == 503 => {}
            Ok(resp) => panic!("{path}: {} {}", resp.status(), resp.text().await.unwrap_or_default()),
            Err(_) => {}
        }
        assert!(started.elapsed() < RETRY_FOR, "{path} was not answered within {RETRY_FOR:?}");
        attempt += 1;
        // A caller's pause before trying again, not a wait for the server's work.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn number(i: u32) -> String {
    format!("+86138002{i:05}")
}

/// Each number's history: disconnected, then given to someone else.
fn history(i: u32) -> [Value; 2] {
    [
        json!({"eventId": format!("ev-{i}-off"), "phoneNumber": number(i), "type": "disconnected", "date": "2024-02-25"}),
        json!({"eventId": format!("ev-{i}-on"), "phoneNumber": number(i), "type": "activated", "date": "2024-09-21"}),
    ]
}

/// Numbers the bank binds during the load, which no event touches: `LATE + i` for the first number `i`
/// of each batch.
const LATE: u32 = 30_000;

/// Reports the histories of `numbers` in batches of ten, through the nodes in turn, asks a code for
/// one number of each batch, and binds an account to a number no event touches; every write retried
/// until it is acknowledged. Returns the numbers whose events were acknowledged.
async fn load(
    client: reqwest::Client,
    nodes: Nodes,
    carrier: String,
    bank: String,
    numbers: std::ops::Range<u32>,
) -> Vec<u32> {
    let mut acknowledged = Vec::new();
    let list: Vec<u32> = numbers.collect();
    for (k, batch) in list.chunks(10).enumerate() {
        let events: Vec<Value> = batch.iter().flat_map(|&i| history(i)).collect();
        let body =
            post_retrying(&client, &nodes, k, "/v1/lifecycle-events", &carrier, &json!({ "events": events })).await;
        let done = body["accepted"].as_u64().unwrap_or(0) + body["duplicates"].as_u64().unwrap_or(0);
        assert_eq!(done, events.len() as u64, "every event accepted or, sent again, a duplicate: {body}");
        acknowledged.extend_from_slice(batch);
        let code = json!({ "phoneNumber": number(batch[0]) });
        post_retrying(&client, &nodes, k + 1, "/v1/holder/otp", "", &code).await;
        // The bank binds an account to a number no event touches.
        let late = json!({"bindings": [{"accountRef": format!("late-{}", batch[0]), "phoneNumber": number(LATE + batch[0]), "boundOn": "2024-01-01"}]});
        post_retrying(&client, &nodes, k, "/v1/bindings", &bank, &late).await;
    }
    acknowledged
}

#[test]
fn two_nodes_lose_nothing_acknowledged_across_a_kill_and_a_failover() {
    let Some(pair) = PgPair::start() else { return };
    let url = pair.url();
    let hash_key = "a1".repeat(32);
    let dir = tempfile::tempdir().unwrap();
    let dirs = [dir.path().join("a"), dir.path().join("b")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        // Files in small chunks: a kill finds the file's job midway. The load asks 20 codes from one
        // address, and a caller retrying through a failover asks some twice: the per-address limit
        // (20 an hour) is not what this test is about.
        std::fs::write(
            d.join("numlink.toml"),
            "[limits]\nfile_chunk_rows = 50\n[holder]\notp_requests_per_client_per_hour_max = 1000\n",
        )
        .unwrap();
    }
    let common = ["--db", url.as_str(), "--hash-key", hash_key.as_str()];
    let add = |args: &[&str]| json_line(&numlink(&dirs[0], &[&["participant", "add"], args, &common].concat()));
    let carrier =
        add(&["--role", "carrier", "--name", "Carrier A", "--prefix", "+86138", "--reporting-since", "2020-01-01"]);
    let bank = add(&["--role", "institution", "--name", "Bank"]);
    let carrier = carrier["apiKey"].as_str().unwrap().to_string();
    let bank = bank["apiKey"].as_str().unwrap().to_string();
    let start = |i: usize| -> Server {
        let outbox = dirs[i].join("sms.jsonl").display().to_string();
        let name = ["node-a", "node-b"][i];
        serve_with(&dirs[i], &[&common[..], &["--node-name", name, "--sms-outbox", &outbox]].concat())
    };
    let mut servers = vec![start(0), start(1)];
    let nodes = Nodes::default();
    nodes.set(0, &servers[0].base);
    nodes.set(1, &servers[1].base);

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    const N: u32 = 240;
    let (receiver, mut got) = runtime.block_on(local_receiver());
    runtime.block_on(async {
        let endpoint = json!({ "url": format!("{receiver}/hook") });
        post_retrying(&client, &nodes, 0, "/v1/webhook-endpoints", &bank, &endpoint).await;
        let bindings: Vec<Value> = (0..N)
            .map(|i| json!({"accountRef": format!("acct-{i}"), "phoneNumber": number(i), "boundOn": "2023-01-01"}))
            .collect();
        for part in bindings.chunks(100) {
            post_retrying(&client, &nodes, 1, "/v1/bindings", &bank, &json!({ "bindings": part })).await;
        }
    });

    // A lifecycle file through node B, which is killed while it may be running it: the histories of
    // numbers 200.. (bound) and of 2,000 numbers no one bound, applied 50 rows a chunk.
    let file = dirs[1].join("events.csv");
    let mut csv = String::from("event_id,phone_number,type,date\n");
    let mut rows = 0;
    for i in (200..N).chain(10_000..12_000) {
        for e in history(i) {
            let (id, kind, date) =
                (e["eventId"].as_str().unwrap(), e["type"].as_str().unwrap(), e["date"].as_str().unwrap());
            csv.push_str(&format!("{id},{},{kind},{date}\n", number(i)));
            rows += 1;
        }
    }
    std::fs::write(&file, csv).unwrap();
    let job: Value = runtime.block_on(async {
        let resp = client
            .post(format!("{}/v1/lifecycle-files", servers[1].base))
            .bearer_auth(&carrier)
            .header("content-type", "text/csv")
            .body(std::fs::read(&file).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        resp.json().await.unwrap()
    });
    let job_id = job["jobId"].as_str().unwrap().to_string();

    // Round one: numbers 0..60 through both nodes; node B is killed midway and started again.
    let first = runtime.spawn(load(client.clone(), nodes.clone(), carrier.clone(), bank.clone(), 0..60));
    let finished_before = servers[1].logged("job finished").iter().any(|l| l["job"] == job_id.as_str());
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    servers[1] = start(1);
    nodes.set(1, &servers[1].base);
    if !finished_before {
        // The restarted node B takes back its claim on the file at once, and finishes it.
        let finished = servers[1].wait_for_log("job finished");
        assert_eq!(finished["job"], job_id.as_str(), "{finished}");
    }
    eprintln!("node B was killed {} the file's job finished", if finished_before { "after" } else { "before" });
    let mut acknowledged = runtime.block_on(first).unwrap();
    acknowledged.extend(200..N);

    // Round two: numbers 60..200 while the primary is lost and the standby promoted.
    let second = runtime.spawn(load(client.clone(), nodes.clone(), carrier.clone(), bank.clone(), 60..200));
    pair.lose_primary();
    let lost = Instant::now();
    pair.promote_standby();
    eprintln!("the standby was promoted {:?} after the primary was lost", lost.elapsed());
    acknowledged.extend(runtime.block_on(second).unwrap());
    let acknowledged: BTreeSet<u32> = acknowledged.into_iter().collect();
    assert_eq!(acknowledged.len(), N as usize);

    runtime.block_on(async {
        // Each node answers every number from where the last write left the database.
        let position = {
            let r = client
                .post(format!("{}/v1/lifecycle-events", nodes.get(0)))
                .bearer_auth(&carrier)
                .json(&json!({ "events": [] }))
                .send()
                .await
                .unwrap();
            r.headers()["numlink-position"].to_str().unwrap().to_string()
        };
        // And the file's numbers no one bound too (every 50th).
        let touched: Vec<u32> = (0..N).chain((10_000..12_000).step_by(50)).collect();
        for node in 0..2 {
            for &i in &touched {
                let body = json!({"phoneNumber": number(i), "specifiedDate": "2024-01-01"});
                let r = client
                    .post(format!("{}/number-recycling/v0.2/check", nodes.get(node)))
                    .bearer_auth(&bank)
                    .header("numlink-min-position", &position)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let answer: Value = r.json().await.unwrap();
                assert_eq!(answer["phoneNumberRecycled"], true, "node {node}, {}", number(i));
            }
        }
        // Every binding made during the load is there once.
        for i in (0..200).step_by(10) {
            let r = client
                .get(format!("{}/v1/bindings?accountRef=late-{i}", nodes.get(i as usize / 10)))
                .bearer_auth(&bank)
                .send()
                .await
                .unwrap();
            let page: Value = r.json().await.unwrap();
            assert_eq!(page["bindings"].as_array().map(Vec::len), Some(1), "late-{i}: {page}");
        }
        // Every acknowledged event is there once.
        for &i in &acknowledged {
            let n = number(i).replace('+', "%2B");
            let r = client
                .get(format!("{}/v1/lifecycle-events?phoneNumber={n}", nodes.get(i as usize)))
                .bearer_auth(&carrier)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            let ids: Vec<&str> =
                body["events"].as_array().unwrap().iter().map(|e| e["eventId"].as_str().unwrap()).collect();
            let mut expected = vec![format!("ev-{i}-off"), format!("ev-{i}-on")];
            expected.sort();
            let mut ids: Vec<String> = ids.into_iter().map(String::from).collect();
            ids.sort();
            assert_eq!(ids, expected, "{}", number(i));
        }
        // Every notification once, and each delivered to the bank's endpoint at least once.
        let mut feed: Vec<Value> = Vec::new();
        let mut after = String::new();
        loop {
            let r = client
                .get(format!("{}/v1/notifications?after={after}&limit=500", nodes.get(0)))
                .bearer_auth(&bank)
                .send()
                .await
                .unwrap();
            let page: Value = r.json().await.unwrap();
            let items = page["notifications"].as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            after = page["nextCursor"].as_str().unwrap().to_string();
            feed.extend(items);
        }
        let mut per_binding: HashMap<(String, String), u32> = HashMap::new();
        for n in &feed {
            let key =
                (n["data"]["bindingId"].as_str().unwrap_or("").to_string(), n["type"].as_str().unwrap().to_string());
            *per_binding.entry(key).or_default() += 1;
        }
        assert!(per_binding.values().all(|&c| c == 1), "a notification twice: {per_binding:?}");
        let bound: BTreeSet<&str> = per_binding.keys().map(|(b, _)| b.as_str()).collect();
        assert_eq!(bound.len(), N as usize, "every bound number was notified");
        let mut waiting: BTreeMap<String, ()> =
            feed.iter().map(|n| (n["id"].as_str().unwrap().to_string(), ())).collect();
        let deliveries = async {
            while !waiting.is_empty() {
                let (path, body) = got.recv().await.expect("the receiver is running");
                if path == "/hook" {
                    waiting.remove(body["id"].as_str().unwrap_or(""));
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), deliveries)
            .await
            .expect("every notification delivered within 60 s");
    });

    // The file's job ended with every row applied once.
    let job: Value = runtime.block_on(async {
        let r = client.get(format!("{}/v1/jobs/{job_id}", nodes.get(0))).bearer_auth(&carrier).send().await.unwrap();
        r.json().await.unwrap()
    });
    assert_eq!(
        (job["state"].as_str(), job["accepted"].as_u64(), job["duplicates"].as_u64()),
        (Some("succeeded"), Some(rows), Some(0)),
        "{job}"
    );
    drop(servers);
    let verify = json_line(&numlink(&dirs[0], &[&["audit", "verify"], &common[..]].concat()));
    assert_eq!(verify["firstBroken"], Value::Null, "{verify}");
}
