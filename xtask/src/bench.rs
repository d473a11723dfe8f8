//! `cargo xtask bench [--only index|lifecycle|lifecycle-order|fanout|http|retention|nodes|failover] [--numbers N] [--events N] [--bindings N] [--checks N]`: benchmarks on this machine,
//! printed as Markdown tables for BENCHMARKS.md. Small sizes by default, so that anyone can run them in
//! a minute.
//!
//! Index (`crates/bench`, in-process, release): a registry of N numbers shaped like a Chinese carrier's;
//! the index built in memory and from a SQLite store at start, its bytes per number, random point
//! lookups on one core, each against a peer measured in the same run (a `HashMap` of the same facts,
//! a plain rusqlite scan of the same rows).
//!
//! HTTP: the release server on a registry of N numbers, loaded by wrk (one thread, the other core is the
//! server's): the CAMARA check against a bare axum handler (same tool, connections and run; three pairs
//! of runs alternating, the median pair reported), its p99 at
//! half the peak rate (a Poisson stream of requests; the bare handler under the same load beside it),
//! and `/v1/reassignment-checks` with 1,000 items per call.
//! The wrk scripts are in `xtask/bench/`.
//!
//! Fan-out: an institution registers N bindings (a binding file), points a webhook endpoint at a local
//! receiver (`numlink webhook-receiver`), and a carrier uploads one RND-style disconnection file
//! touching all N bound numbers. Measured: bindings registered per second, notifications created per
//! second (the disconnection job, which creates them in its transactions), deliveries per second, and
//! the time from the file's last commit to the last delivery. The peer, in the same run: the same
//! disconnection file on numbers nobody has bound, so the ratio is the cost of the fan-out.
//!
//! Retention (`crates/bench`, in-process, release): a bank checks N numbers in one day; the idle
//! writer's steps moving them into the lookups index, and 181 days later the upkeep's steps dropping the
//! check log: the writer's time in all and per step. The peer: the same log deleted in one transaction
//! on a copy of the database, the time a writer doing it at once would be held.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub(crate) struct Killed(pub(crate) Child);

/// The benchmark's directory, removed however the run ends.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn json_field(line: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":");
    let rest = &line[line.find(&key)? + key.len()..];
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix('"') {
        Some(r[..r.find('"')?].to_string())
    } else {
        Some(rest.chars().take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')).collect())
    }
}

/// A number field of a JSON line (the first with that name); NaN when there is none.
pub(crate) fn json_number(line: &str, field: &str) -> f64 {
    json_field(line, field).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

pub(crate) fn run_json(bin: &Path, dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).current_dir(dir).args(args).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("numlink {args:?} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A release binary as `cargo build --release` just left it: in `CARGO_TARGET_DIR` when that is set.
pub(crate) fn release(root: &Path, name: &str) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from)
        .join("release")
        .join(name)
}

/// Builds `crates/bench` and runs one of its benchmarks; returns a reader of the numbers it printed
/// (NaN for a field it did not print, so that a table shows the gap rather than failing).
fn in_process(root: &Path, args: &[&str]) -> Result<impl Fn(&str) -> f64 + use<>> {
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "bench"]))?;
    let out = Command::new(release(root, "bench"))
        .args(args)
        .args(["--dir", &std::env::temp_dir().display().to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running the {} benchmark", args[0]))?;
    if !out.status.success() {
        bail!("the {} benchmark failed", args[0]);
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(move |k: &str| json_field(&text, k).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN))
}

fn count_lines(path: &Path) -> usize {
    std::fs::File::open(path).map(|f| BufReader::new(f).lines().count()).unwrap_or(0)
}

/// Counts the lines of a file that another process appends to, reading only what was added since the
/// last count: polled while a receiver writes a line a delivery, it costs the system under test no more
/// than the bytes once (re-reading the whole file each time took a tenth of a core at 300,000 lines).
struct GrowingLines {
    file: std::fs::File,
    lines: usize,
    buf: Vec<u8>,
}

impl GrowingLines {
    fn open(path: &Path) -> Result<GrowingLines> {
        Ok(GrowingLines { file: std::fs::File::open(path)?, lines: 0, buf: vec![0; 1 << 20] })
    }

    fn count(&mut self) -> Result<usize> {
        loop {
            let n = std::io::Read::read(&mut self.file, &mut self.buf)?;
            if n == 0 {
                return Ok(self.lines);
            }
            self.lines += self.buf[..n].iter().filter(|&&b| b == b'\n').count();
        }
    }
}

pub fn bench(root: &Path, args: &[String]) -> Result<()> {
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if value("--only").as_deref() == Some("nodes") {
        nodes(root)?;
        return failover(root);
    }
    if value("--only").as_deref() == Some("failover") {
        return failover(root);
    }
    if value("--only").as_deref() == Some("http") {
        return http(
            root,
            value("--numbers").as_deref().unwrap_or("1000000"),
            value("--check-rows").as_deref().unwrap_or("1000000"),
        );
    }
    bench_in_process(root, args)
}

fn bench_in_process(root: &Path, args: &[String]) -> Result<()> {
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let only = value("--only");
    if only.as_deref().is_none_or(|o| o == "index") {
        index(root, value("--numbers").as_deref().unwrap_or("1000000"))?;
    }
    if only.as_deref().is_none_or(|o| o == "lifecycle") {
        lifecycle(root, value("--events").as_deref().unwrap_or("200000"))?;
    }
    if only.as_deref().is_none_or(|o| o == "lifecycle-order") {
        lifecycle_order(root, value("--events").as_deref().unwrap_or("200000"))?;
    }
    if only.as_deref().is_none_or(|o| o == "fanout") {
        fanout(
            root,
            value("--bindings").as_deref().unwrap_or("10000").parse().context("--bindings N")?,
            value("--batch-events").as_deref().unwrap_or("1").parse().context("--batch-events N")?,
        )?;
    }
    if only.as_deref().is_none_or(|o| o == "retention") {
        retention(root, value("--checks").as_deref().unwrap_or("1000000"))?;
    }
    if only.is_none() {
        http(
            root,
            value("--numbers").as_deref().unwrap_or("1000000"),
            value("--check-rows").as_deref().unwrap_or("1000000"),
        )?;
    }
    Ok(())
}

/// What wrk measured in one run.
struct Wrk {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `wrk --latency` with a script, on one thread (the server has the other core), for 10 s; fails on
/// any non-2xx answer.
fn wrk(dir: &Path, script: &Path, connections: u32, url: &str, env: &[(&str, String)]) -> Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.current_dir(dir).args(["-t1", &format!("-c{connections}"), "-d10s", "--latency", "-s"]).arg(script).arg(url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("running wrk (Debian: apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk against {url} failed or saw errors:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    let ms = |v: Option<String>| -> f64 {
        let v = v.unwrap_or_default();
        let (num, unit): (String, String) = (
            v.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect(),
            v.chars().filter(|c| c.is_alphabetic()).collect(),
        );
        let x: f64 = num.parse().unwrap_or(f64::NAN);
        match unit.as_str() {
            "us" => x / 1000.0,
            "ms" => x,
            "s" => x * 1000.0,
            _ => f64::NAN,
        }
    };
    let requests_per_s = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("wrk printed no Requests/sec")?;
    Ok(Wrk { requests_per_s, p50_ms: ms(field("50%")), p99_ms: ms(field("99%")) })
}

/// Over HTTP, whole-system, against the release binary: the CAMARA check and `/v1/reassignment-checks`
/// by wrk, against a bare axum handler returning a fixed JSON body (`bench bare`), same tool, same
/// connections, same run. The registry: `numbers` numbers shaped like a Chinese carrier's, on SQLite.
/// A `numlink.toml` for a server under a bench's load: the per-participant and per-address rate
/// limits (which still run) far above any rate the bench reaches, since a bench measures the server,
/// not its limits.
fn write_bench_config(dir: &Path) -> Result<()> {
    let unlimited = "{ per_sec = 100000000, burst = 100000000 }";
    let roles = ["carrier", "institution", "regulator", "portability", "anonymous_per_client"];
    let table: String = roles.iter().map(|r| format!("{r} = {unlimited}\n")).collect();
    std::fs::write(dir.join("numlink.toml"), format!("[rate_limits]\n{table}"))?;
    Ok(())
}

fn http(root: &Path, numbers: &str, check_rows: &str) -> Result<()> {
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "numlink", "-p", "bench"]))?;
    let bin = release(root, "numlink");
    let bench = release(root, "bench");
    let guard = TempDir(std::env::temp_dir().join(format!("numlink-bench-http-{}", std::process::id())));
    let dir = guard.0.clone();
    std::fs::create_dir_all(&dir)?;
    write_bench_config(&dir)?;
    let db = dir.join("numlink.db");
    let sample = dir.join("sample.txt");
    let check_file = dir.join("checks.csv");
    let t = Instant::now();
    let status = Command::new(&bench)
        .args(["registry", "--numbers", numbers, "--db", path_str(&db), "--sample", path_str(&sample)])
        .args(["--check-file", path_str(&check_file), "--check-rows", check_rows])
        .status()?;
    if !status.success() {
        bail!("writing the registry failed");
    }
    eprintln!("registry of {numbers} numbers written in {:.0} s", t.elapsed().as_secs_f64());
    let db_url = format!("sqlite://{}", db.display());
    let bank = run_json(
        &bin,
        &dir,
        &["participant", "add", "--role", "institution", "--name", "Bench Bank", "--db", &db_url],
    )?;
    let key = json_field(&bank, "apiKey").context("bank key")?;
    let key_arg = key.clone();

    let port = free_port()?;
    let first_number = std::fs::read_to_string(&sample)?.lines().next().context("an empty sample")?.to_string();
    // A server's start, from its spawn to its first answered check: the first reads every number, the
    // one after a clean stop the snapshot of its index written at that stop.
    let start_server = |log: &str| -> Result<(Killed, f64)> {
        let t = Instant::now();
        let server = Killed(
            Command::new(&bin)
                .current_dir(&dir)
                .args(["serve", "--db", &db_url, "--listen", &format!("127.0.0.1:{port}")])
                .env("NUMLINK_LOG", "info")
                .stderr(std::fs::File::create(dir.join(log))?)
                .spawn()?,
        );
        wait_for_port(port)?;
        first_answer(port, &key_arg, &first_number)?;
        Ok((server, t.elapsed().as_secs_f64()))
    };
    let (mut server, scan_start_secs) = start_server("server.log")?;
    let bare_port = free_port()?;
    let bare = Killed(Command::new(&bench).args(["bare", "--listen", &format!("127.0.0.1:{bare_port}")]).spawn()?);
    wait_for_port(bare_port)?;

    let scripts = root.join("xtask/bench");
    let env = [("NUMLINK_SAMPLE", sample.display().to_string()), ("NUMLINK_KEY", key)];
    let url = format!("http://127.0.0.1:{port}");
    let bare_url = format!("http://127.0.0.1:{bare_port}");
    let camara = scripts.join("camara.lua");
    const CONNECTIONS: u32 = 64;
    // The peer and numlink alternate, three runs each after a warm-up: this VM's speed drifts within
    // minutes (the bare peer's rate moved by a seventh between runs), so one pair is a poor estimate.
    // numlink is stopped (SIGSTOP) while the peer runs: after a load it moves the checks into the
    // lookups table when quiet, which would take CPU from the peer. The pair whose ratio is the median
    // is the one reported, with the three ratios.
    let signal = |sig: &str| -> Result<()> {
        let status = Command::new("kill").args([sig, &server.0.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill {sig} of the server failed");
        }
        Ok(())
    };
    // The check file first, upload to finished result, with the CLI a bank would use, on the server
    // just started: nothing else in its queue. A server moves every logged check into the holder's
    // lookups table once it is quiet; the loads below wait until it has moved the file's.
    let result = dir.join("result.csv");
    let t = Instant::now();
    let status = Command::new(&bin)
        .args(["check-file", path_str(&check_file), "--server", &url, "--key", &key_arg, "-o", path_str(&result)])
        .stderr(Stdio::null())
        .status()?;
    let check_file_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        bail!("numlink check-file failed");
    }
    let upkeep_secs = wait_idle(server.0.id())?;
    wrk(&dir, &camara, CONNECTIONS, &url, &env)?;
    let mut pairs: Vec<(Wrk, Wrk)> = Vec::new();
    for _ in 0..3 {
        signal("-STOP")?;
        let peer = wrk(&dir, &camara, CONNECTIONS, &bare_url, &env);
        signal("-CONT")?;
        pairs.push((peer?, wrk(&dir, &camara, CONNECTIONS, &url, &env)?));
    }
    let ratio = |(peer, ours): &(Wrk, Wrk)| ours.requests_per_s / peer.requests_per_s;
    let ratios: Vec<String> = pairs.iter().map(|p| format!("{:.2}", ratio(p))).collect();
    pairs.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let (peer, ours) = pairs.swap_remove(1);
    // Half the peak rate: connections that each wait a random time (exponential, mean DELAY_MS) before
    // their next request, a Poisson stream, as many as that rate needs; their number corrected from the
    // rate reached until it is within 3% of half the peak (at most three runs).
    const DELAY_MS: f64 = 10.0;
    let half = ours.requests_per_s / 2.0;
    let mut paced_env = env.to_vec();
    paced_env.push(("NUMLINK_DELAY_MS", format!("{DELAY_MS}")));
    // Connections for a rate: clamped, whatever wrk printed (a p50 it could not parse is NaN).
    let connections_for = |c: f64| if c.is_finite() { c.round().clamp(1.0, 4096.0) as u32 } else { 1 };
    let p50 = if ours.p50_ms.is_finite() { ours.p50_ms } else { 1.0 };
    let mut paced_connections = connections_for(half * (DELAY_MS + p50) / 1000.0);
    let mut paced = wrk(&dir, &camara, paced_connections, &url, &paced_env)?;
    let on_rate = |w: &Wrk| (w.requests_per_s / half - 1.0).abs() <= 0.03;
    for _ in 0..2 {
        if on_rate(&paced) {
            break;
        }
        paced_connections =
            connections_for(f64::from(paced_connections) * half / paced.requests_per_s.max(half / 100.0));
        paced = wrk(&dir, &camara, paced_connections, &url, &paced_env)?;
    }
    // Said in the table if the rate was not reached within 3%.
    let off_rate = if on_rate(&paced) { "" } else { " (**not within 3% of half the peak**)" };
    let batch = scripts.join("batch.lua");
    let mut best_batch = Wrk { requests_per_s: 0.0, p50_ms: f64::NAN, p99_ms: f64::NAN };
    let mut best_batch_connections = 0;
    for c in [4, 8, 16] {
        let w = wrk(&dir, &batch, c, &url, &env)?;
        if w.requests_per_s > best_batch.requests_per_s {
            (best_batch, best_batch_connections) = (w, c);
        }
    }
    // A clean stop writes the index's snapshot; the next start reads it.
    signal("-TERM")?;
    if !server.0.wait()?.success() {
        bail!("the server did not stop cleanly on SIGTERM");
    }
    let (restarted, snapshot_start_secs) = start_server("server-restart.log")?;
    let restart_log = std::fs::read_to_string(dir.join("server-restart.log"))?;
    if !restart_log.lines().any(|l| l.contains("index built") && l.contains("Snapshot")) {
        bail!("the restarted server did not build its index from the snapshot:\n{restart_log}");
    }
    drop(restarted);
    // The peer at the paced load, once numlink is stopped (it would move its checks into the lookups
    // table meanwhile): what the load tool and the HTTP stack alone give at that rate on this machine.
    let peer_paced = wrk(&dir, &camara, paced_connections, &bare_url, &paced_env)?;
    drop(bare);
    let rows = count_lines(&check_file) - 1;
    if count_lines(&result) != rows + 1 {
        bail!("the result has {} lines for {rows} rows", count_lines(&result));
    }
    // The peer: PostgreSQL, the same registry in an indexed table, the same file COPYed and LEFT JOINed.
    let pg = crate::PgCluster::start()?;
    let peer_result = dir.join("peer-result.csv");
    let out = Command::new(&bench)
        .args(["pg-peer", "--url", &pg.url(), "--numbers", numbers, "--check-file", path_str(&check_file)])
        .args(["--out", path_str(&peer_result)])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the PostgreSQL peer failed");
    }
    drop(pg);
    let text = String::from_utf8_lossy(&out.stdout);
    let peer_secs: f64 = json_field(&text, "peer_secs").and_then(|v| v.parse().ok()).context("peer_secs")?;
    if count_lines(&peer_result) != rows + 1 {
        bail!("the peer's result has {} lines for {rows} rows", count_lines(&peer_result));
    }
    drop(guard);

    println!(
        "\n| over HTTP, registry of {numbers} numbers, SQLite, wrk -t1 | numlink | peer, same run | ratio | target |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| CAMARA check, authenticated and audited, {CONNECTIONS} connections (the median of three alternating pairs) | {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms) | bare axum, fixed JSON body: {:.0} req/s (p99 {:.2} ms) | {:.2}x (the pairs: {}) | >= 0.6x |",
        ours.requests_per_s,
        ours.p50_ms,
        ours.p99_ms,
        peer.requests_per_s,
        peer.p99_ms,
        ours.requests_per_s / peer.requests_per_s,
        ratios.join(", ")
    );
    println!(
        "| CAMARA check at half the peak rate, {half:.0} req/s: a Poisson stream ({paced_connections} connections, each waiting {DELAY_MS} ms on average) | {:.0} req/s{off_rate}, p50 {:.2} ms, p99 {:.2} ms | bare axum, the same load: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | | p99 <= 5 ms |",
        paced.requests_per_s,
        paced.p50_ms,
        paced.p99_ms,
        peer_paced.requests_per_s,
        peer_paced.p50_ms,
        peer_paced.p99_ms
    );
    println!(
        "| `/v1/reassignment-checks`, 1,000 items per call, {best_batch_connections} connections (best of 4, 8, 16) | {:.2} M numbers/s (p99 {:.1} ms per call) | | | >= 2 M/s |",
        best_batch.requests_per_s * 1000.0 / 1e6,
        best_batch.p99_ms
    );
    println!(
        "| a server's start, from its spawn to its first answered check, after a clean stop (the index's snapshot) | {snapshot_start_secs:.2} s | the first start, reading every number: {scan_start_secs:.2} s | {:.2}x | <= 3 s at 100,000,000 numbers |",
        snapshot_start_secs / scan_start_secs
    );
    println!(
        "| check file of {rows} rows, upload to finished result (`numlink check-file`, {check_file_secs:.1} s, on the server just started; it then moved the file's logged checks into the lookups table in {upkeep_secs:.0} s) | {:.2} M rows/s | PostgreSQL 15, COPY + LEFT JOIN + COPY out ({peer_secs:.1} s): {:.2} M rows/s | {:.1}x | >= 3 M rows/s and >= 10x |",
        rows as f64 / check_file_secs / 1e6,
        rows as f64 / peer_secs / 1e6,
        peer_secs / check_file_secs
    );
    Ok(())
}

/// The index, in-process: runs `crates/bench` and tabulates what it prints.
fn index(root: &Path, numbers: &str) -> Result<()> {
    let v = in_process(root, &["index", "--numbers", numbers])?;
    let m = |x: f64| format!("{:.1} M", x / 1e6);
    println!(
        "\n| index, {} numbers in {} blocks | numlink | peer, same run | ratio | target |",
        v("numbers"),
        v("blocks")
    );
    println!("|---|---|---|---|---|");
    println!(
        "| random point lookups, one core, 1,000 per call (`answer_many`) | {}/s | HashMap + same R2: {}/s | {:.1}x | >= 20 M/s |",
        m(v("lookups_many_per_s")),
        m(v("peer_hashmap_lookups_per_s")),
        v("lookups_many_per_s") / v("peer_hashmap_lookups_per_s")
    );
    println!(
        "| random point lookups, one core, one per call (`answer`) | {}/s | HashMap + same R2: {}/s | {:.1}x | |",
        m(v("lookups_per_s")),
        m(v("peer_hashmap_lookups_per_s")),
        v("lookups_per_s") / v("peer_hashmap_lookups_per_s")
    );
    println!(
        "| build at start from the SQLite store (`Store::open`) | {}/s ({:.1} s) | plain rusqlite scan of the rows: {}/s | {:.2}x | >= 5 M/s |",
        m(v("build_store_numbers_per_s")),
        v("build_store_secs"),
        m(v("peer_sqlite_scan_rows_per_s")),
        v("build_store_numbers_per_s") / v("peer_sqlite_scan_rows_per_s")
    );
    println!(
        "| a restart from the index's snapshot, to the first audited check (equal to the scan's, by digest) | {:.2} s (snapshot {:.0} MB, written in {:.1} s) | reading every number: {:.1} s | {:.2}x | <= 3 s at 100,000,000 numbers |",
        v("snapshot_start_secs"),
        v("snapshot_bytes") / 1e6,
        v("snapshot_write_secs"),
        v("build_store_secs"),
        v("snapshot_start_secs") / v("build_store_secs")
    );
    println!(
        "| build in memory | {}/s | HashMap inserts: {}/s | {:.1}x | |",
        m(v("build_memory_numbers_per_s")),
        m(v("peer_hashmap_build_numbers_per_s")),
        v("build_memory_numbers_per_s") / v("peer_hashmap_build_numbers_per_s")
    );
    println!(
        "| memory per number in an allocated block | {:.2} bytes | HashMap: {:.1} bytes | {:.2}x | <= 6 bytes |",
        v("bytes_per_number"),
        v("peer_hashmap_bytes_per_number"),
        v("bytes_per_number") / v("peer_hashmap_bytes_per_number")
    );
    println!("| projection for 1.8 billion numbers | {:.1} GiB | | | |", v("projection_1_8e9_gib"));
    println!(
        "| audited checks through the store, 1,000 per call, 32 callers (`Store::check`) | {}/s | | | `/v1/reassignment-checks` >= 2 M/s |",
        m(v("audited_checks_per_s"))
    );
    Ok(())
}

/// The check log's upkeep (see the module's text).
fn retention(root: &Path, checks: &str) -> Result<()> {
    let v = in_process(root, &["retention", "--checks", checks])?;
    println!(
        "\n| the check log of {} checks made in one day, SQLite | numlink | peer, same run | ratio | target |",
        v("checks")
    );
    println!("|---|---|---|---|---|");
    println!("| logged, 100,000 a call | {:.1} s | | | |", v("log_secs"));
    println!(
        "| moved into the lookups index by the idle writer | {:.1} s on the writer in {} steps of {} checks; longest step {:.1} ms, p99 {:.1} ms | | | |",
        v("compact_secs"),
        v("compact_steps"),
        v("compact_step_entries"),
        v("compact_step_ms_max"),
        v("compact_step_ms_p99")
    );
    println!(
        "| dropped by the upkeep 181 days later | {:.1} s on the writer in {} steps of {} checks; longest step {:.1} ms, p99 {:.1} ms | the same deleted in one transaction: the writer held {:.1} s at once | longest step / peer: {:.4} | no step holds the writer for long |",
        v("prune_secs"),
        v("prune_steps"),
        v("prune_step_entries"),
        v("prune_step_ms_max"),
        v("prune_step_ms_p99"),
        v("peer_delete_at_once_secs"),
        v("prune_step_ms_max") / 1000.0 / v("peer_delete_at_once_secs")
    );
    Ok(())
}

/// A lifecycle file applied as a job, in-process, against a plain rusqlite insert of the same rows and
/// against the floor of any registry (the insert, an index by number, the number's summary).
fn lifecycle(root: &Path, events: &str) -> Result<()> {
    let v = in_process(root, &["lifecycle", "--events", events])?;
    println!(
        "\n| lifecycle file, {} events, durable on SQLite | numlink | peer, same run | ratio | target |",
        v("events")
    );
    println!("|---|---|---|---|---|");
    println!(
        "| spooled file applied by the job runner ({:.1} s) | {:.0} events/s | plain rusqlite insert, same chunks: {:.0} rows/s | {:.2}x | >= 300,000 events/s |",
        v("secs"),
        v("events_per_s"),
        v("peer_rusqlite_rows_per_s"),
        v("events_per_s") / v("peer_rusqlite_rows_per_s")
    );
    println!(
        "| the floor of a registry: each row also indexed by number and its summary upserted | | plain rusqlite, same chunks: {:.0} rows/s | {:.2}x | |",
        v("floor_rusqlite_rows_per_s"),
        v("events_per_s") / v("floor_rusqlite_rows_per_s")
    );
    Ok(())
}

/// The same disconnections of numbers drawn at random, applied as a job into a fresh registry: sorted
/// by number (the peer), in their random order, in random order with event ids in the file's order,
/// and in random order on a durable throwaway PostgreSQL (when its server binaries are here), while a
/// bank checks a number every 20 ms.
fn lifecycle_order(root: &Path, events: &str) -> Result<()> {
    let cluster = match crate::PgCluster::start_durable() {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("NOTE: the PostgreSQL run is SKIPPED: {e:#}");
            None
        }
    };
    let url = cluster.as_ref().map(crate::PgCluster::url);
    let mut args = vec!["lifecycle-order", "--events", events];
    if let Some(url) = &url {
        args.extend(["--pg", url.as_str()]);
    }
    let v = in_process(root, &args)?;
    drop(cluster);
    println!(
        "\n| lifecycle file, {} disconnections of random numbers of +86138, durable, {} chunk(s) in flight | events/s | time | a check meanwhile: p50 / p99 / max | target |",
        v("events"),
        v("chunks_in_flight")
    );
    println!("|---|---|---|---|---|");
    for (label, key, target) in [
        ("SQLite, rows sorted by number (the peer)", "sorted", ""),
        ("SQLite, rows in random order", "random", ">= 300,000 events/s, within 1.25x of sorted"),
        ("SQLite, random order, event ids in file order (random in number order)", "random_ids", ""),
        ("PostgreSQL, rows in random order", "random_pg", "report, and the ratio to SQLite"),
    ] {
        println!(
            "| {label} | {:.0} | {:.1} s | {:.1} / {:.1} / {:.1} ms | {target} |",
            v(&format!("{key}_events_per_s")),
            v(&format!("{key}_secs")),
            v(&format!("{key}_check_ms_p50")),
            v(&format!("{key}_check_ms_p99")),
            v(&format!("{key}_check_ms_max")),
        );
    }
    println!(
        "\nrandom over sorted, in time: {:.2}x; ids in file order over sorted: {:.2}x; PostgreSQL over SQLite (random): {:.2}x",
        v("random_over_sorted_time"),
        v("random_ids_over_sorted_time"),
        v("pg_over_sqlite_time")
    );
    Ok(())
}

/// Two `numlink serve` nodes (`a`, `b`: homes of their own under `dir`, free ports) on the database
/// `db`, with a carrier and a bank added through the command line; both nodes stop when it is dropped.
struct TwoNodes {
    carrier: String,
    bank: String,
    ports: (u16, u16),
    _servers: (Killed, Killed),
}

impl TwoNodes {
    fn start(bin: &Path, dir: &Path, db: &str) -> Result<TwoNodes> {
        let hash_key = "cd".repeat(32);
        let cli = |args: &[&str]| -> Result<String> {
            let out = Command::new(bin)
                .current_dir(dir)
                .args(args)
                .args(["--db", db])
                .env("NUMLINK_HASH_KEY", &hash_key)
                .output()?;
            if !out.status.success() {
                bail!("numlink {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let carrier = cli(&[
            "participant",
            "add",
            "--role",
            "carrier",
            "--name",
            "Carrier",
            "--prefix",
            "+86138",
            "--reporting-since",
            "2018-01-01",
        ])?;
        let bank = cli(&["participant", "add", "--role", "institution", "--name", "Bank"])?;
        let serve = |name: &str, port: u16| -> Result<Killed> {
            let home = dir.join(name);
            std::fs::create_dir_all(&home)?;
            write_bench_config(&home)?;
            let node = Killed(
                Command::new(bin)
                    .current_dir(&home)
                    .args(["serve", "--db", db, "--listen", &format!("127.0.0.1:{port}")])
                    .env("NUMLINK_HASH_KEY", &hash_key)
                    .stderr(std::fs::File::create(home.join("server.log"))?)
                    .spawn()?,
            );
            wait_for_port(port)?;
            Ok(node)
        };
        let ports = (free_port()?, free_port()?);
        let servers = (serve("a", ports.0)?, serve("b", ports.1)?);
        Ok(TwoNodes {
            carrier: json_field(&carrier, "apiKey").context("carrier key")?,
            bank: json_field(&bank, "apiKey").context("bank key")?,
            ports,
            _servers: servers,
        })
    }

    /// `bench follow` against the two nodes: its JSON line.
    fn follow(&self, bench: &Path, loaders: &str, secs: &str) -> Result<String> {
        let (a, b) = (self.ports.0.to_string(), self.ports.1.to_string());
        let out = Command::new(bench)
            .args(["follow", "--a", &a, "--b", &b, "--carrier", &self.carrier, "--bank", &self.bank])
            .args(["--loaders", loaders, "--secs", secs])
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("bench follow failed");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Two `numlink serve` nodes on one durable throwaway PostgreSQL, whole-system: how long after node A
/// acknowledges an event node B answers from it (`bench follow`: a probe every 20 ms asks B with A's
/// `numlink-min-position`) while two loaders post batches of 1,000 events to A as fast as it takes
/// them, and with no load; then CAMARA checks per second by wrk on one node, and on both at once.
fn nodes(root: &Path) -> Result<()> {
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "numlink", "-p", "bench"]))?;
    let (bin, bench) = (release(root, "numlink"), release(root, "bench"));
    let cluster = crate::PgCluster::start_durable()?;
    let db = cluster.url();
    let guard = TempDir(std::env::temp_dir().join(format!("numlink-bench-nodes-{}", std::process::id())));
    let dir = guard.0.clone();
    std::fs::create_dir_all(&dir)?;
    let nodes = TwoNodes::start(&bin, &dir, &db)?;
    let (pa, pb) = nodes.ports;
    let idle = nodes.follow(&bench, "0", "10")?;
    let loaded = nodes.follow(&bench, "2", "30")?;
    let v = |text: &str, k: &str| json_field(text, k).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // Checks: numbers of the carrier's range, most never reported (answered from the index alike).
    let sample = dir.join("sample.txt");
    let numbers: String = (0..100_000u64).map(|i| format!("+86138{:08}\n", i * 997 % 100_000_000)).collect();
    std::fs::write(&sample, numbers)?;
    let camara = root.join("xtask/bench/camara.lua");
    let env = [("NUMLINK_SAMPLE", sample.display().to_string()), ("NUMLINK_KEY", nodes.bank.clone())];
    let (url_a, url_b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    wrk(&dir, &camara, 64, &url_a, &env)?;
    let one = wrk(&dir, &camara, 64, &url_a, &env)?;
    let (both_a, both_b) = std::thread::scope(|s| {
        let a = s.spawn(|| wrk(&dir, &camara, 64, &url_a, &env));
        let b = s.spawn(|| wrk(&dir, &camara, 64, &url_b, &env));
        (a.join().expect("wrk thread"), b.join().expect("wrk thread"))
    });
    let (both_a, both_b) = (both_a?, both_b?);
    println!("\n| two nodes on one durable PostgreSQL | figure |");
    println!("|---|---|");
    println!(
        "| follow lag, no load: node B answers from node A's write after | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes) |",
        v(&idle, "lag_ms_p50"),
        v(&idle, "lag_ms_p99"),
        v(&idle, "lag_ms_max"),
        v(&idle, "probes")
    );
    println!(
        "| follow lag while node A takes {:.0} events/s (two loaders, batches of 1,000, as fast as it answers) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes) |",
        v(&loaded, "events_per_s"),
        v(&loaded, "lag_ms_p50"),
        v(&loaded, "lag_ms_p99"),
        v(&loaded, "lag_ms_max"),
        v(&loaded, "probes")
    );
    println!(
        "| CAMARA checks, 64 connections, one node | {:.0} req/s (p99 {:.2} ms) |",
        one.requests_per_s, one.p99_ms
    );
    println!(
        "| CAMARA checks, 64 connections to each of two nodes at once | {:.0} + {:.0} = {:.0} req/s (p99 {:.2} and {:.2} ms); {:.2}x one node |",
        both_a.requests_per_s,
        both_b.requests_per_s,
        both_a.requests_per_s + both_b.requests_per_s,
        both_a.p99_ms,
        both_b.p99_ms,
        (both_a.requests_per_s + both_b.requests_per_s) / one.requests_per_s
    );
    drop(nodes);
    drop(cluster);
    Ok(())
}

/// A failover under writes: two nodes on a durable primary with a synchronous standby; `bench writes`
/// posts batches of ten events through both nodes, each sent again to the other node until it is
/// acknowledged; a few seconds in, the primary is stopped at once (its machine lost) and the standby
/// promoted. Measured, three times: how long the promotion took, and how long from the primary's loss
/// until the first write acknowledged after it. Before the first, the ingest the primary holds with its
/// standby, and the follow lag meanwhile (`bench follow`).
fn failover(root: &Path) -> Result<()> {
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "numlink", "-p", "bench"]))?;
    let (bin, bench) = (release(root, "numlink"), release(root, "bench"));
    let mut rows = Vec::new();
    let mut ingest = None;
    for run in 0..3 {
        let primary = crate::PgCluster::start_durable_primary()?;
        let standby = primary.standby()?;
        let db = format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&connect_timeout=2",
            primary.port(),
            standby.port()
        );
        let guard = TempDir(std::env::temp_dir().join(format!("numlink-bench-failover-{}-{run}", std::process::id())));
        let dir = guard.0.clone();
        std::fs::create_dir_all(&dir)?;
        let nodes = TwoNodes::start(&bin, &dir, &db)?;
        let (pa, pb) = nodes.ports;
        let carrier = nodes.carrier.clone();
        let mark = dir.join("primary-lost-at");
        if run == 0 {
            // The ingest a primary holds when every commit waits for its standby, and the follow lag.
            ingest = Some(nodes.follow(&bench, "2", "20")?);
        }
        let writes = Command::new(&bench)
            .args(["writes", "--a", &pa.to_string(), "--b", &pb.to_string(), "--carrier", &carrier, "--secs", "10"])
            .arg("--mark")
            .arg(&mark)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        std::thread::sleep(Duration::from_secs(4));
        let unix_ms = || {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let lost = unix_ms();
        std::fs::write(&mark, format!("{lost}"))?;
        primary.stop_now()?;
        let promoting = Instant::now();
        standby.promote()?;
        let promote_ms = promoting.elapsed().as_secs_f64() * 1000.0;
        let out = writes.wait_with_output()?;
        if !out.status.success() {
            bail!("bench writes failed");
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let v = |k: &str| json_field(&text, k).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
        let first_after = v("first_ack_after_mark_ms");
        rows.push((promote_ms, first_after, v("longest_wait_ms"), v("batches"), v("refused")));
        drop(nodes);
        drop((standby, primary));
    }
    if let Some(text) = ingest {
        let v = |k: &str| json_field(&text, k).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
        println!("\n| two nodes on a durable primary with a synchronous standby | figure |");
        println!("|---|---|");
        println!(
            "| node A takes, from two loaders (batches of 1,000, as fast as it answers) | {:.0} events/s |",
            v("events_per_s")
        );
        println!(
            "| follow lag meanwhile: node B answers from node A's write after | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} probes) |",
            v("lag_ms_p50"),
            v("lag_ms_p99"),
            v("lag_ms_max"),
            v("probes")
        );
    }
    println!(
        "\n| failover: primary lost, standby promoted (run) | promotion took | primary lost → first write acknowledged | longest wait between acknowledged writes | batches acknowledged (refused attempts) |"
    );
    println!("|---|---|---|---|---|");
    for (i, (promote, first, wait, batches, refused)) in rows.iter().enumerate() {
        println!("| {} | {promote:.0} ms | {first:.0} ms | {wait:.0} ms | {batches:.0} ({refused:.0}) |", i + 1);
    }
    Ok(())
}

/// The webhook fan-out, whole-system, against the release binary.
/// `batch_events`: the endpoint's `batchEvents` (1: a request per notification; 0: no endpoint, so
/// that the notifications are written without deliveries).
fn fanout(root: &Path, n: usize, batch_events: u32) -> Result<()> {
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "numlink"]))?;
    let bin = release(root, "numlink");
    let guard = TempDir(std::env::temp_dir().join(format!("numlink-bench-{}", std::process::id())));
    let dir = guard.0.clone();
    std::fs::create_dir_all(&dir)?;
    write_bench_config(&dir)?;

    let carrier = run_json(
        &bin,
        &dir,
        &[
            "participant",
            "add",
            "--role",
            "carrier",
            "--name",
            "Bench Carrier",
            "--prefix",
            "+861",
            "--reporting-since",
            "2020-01-01",
        ],
    )?;
    let bank = run_json(&bin, &dir, &["participant", "add", "--role", "institution", "--name", "Bench Bank"])?;
    let carrier_key = json_field(&carrier, "apiKey").context("carrier key")?;
    let bank_key = json_field(&bank, "apiKey").context("bank key")?;

    // Numbers in 10,000-number blocks, as carriers allocate them.
    let number = |i: usize| format!("+8613{:09}", i);
    let bindings_csv = dir.join("bindings.csv");
    let disconnects_csv = dir.join("disconnects.csv");
    let unbound_csv = dir.join("unbound.csv");
    {
        let mut b = std::io::BufWriter::new(std::fs::File::create(&bindings_csv)?);
        let mut d = std::io::BufWriter::new(std::fs::File::create(&disconnects_csv)?);
        let mut u = std::io::BufWriter::new(std::fs::File::create(&unbound_csv)?);
        writeln!(b, "account_ref,phone_number,bound_on")?;
        writeln!(d, "phone_number,disconnect_date")?;
        writeln!(u, "phone_number,disconnect_date")?;
        // A bank's binding file comes in its own (account) order, not the numbers': bindings are
        // registered in a shuffled order, so the disconnection file meets them scattered over the table,
        // as a carrier's monthly file meets a bank's bindings made over the years.
        let mut order: Vec<usize> = (0..n).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            writeln!(b, "acct-{i},{},2023-01-01", number(i))?;
        }
        for i in 0..n {
            writeln!(d, "{},2024-02-25", number(i))?;
            // The peer: the same file shape on numbers nobody has bound.
            writeln!(u, "{},2024-02-25", number(n + i))?;
        }
    }

    let port = free_port()?;
    let server_url = format!("http://127.0.0.1:{port}");
    let server = Killed(
        Command::new(&bin)
            .current_dir(&dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--allow-loopback-webhooks"])
            .env("NUMLINK_LOG", "warn")
            .stderr(std::fs::File::create(dir.join("server.log"))?)
            .spawn()?,
    );
    wait_for_port(port)?;

    // The peer first: the same file shape, on numbers nobody has bound.
    let t = Instant::now();
    run_json(&bin, &dir, &["upload", path_str(&unbound_csv), "--server", &server_url, "--key", &carrier_key])?;
    let unbound_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    run_json(
        &bin,
        &dir,
        &["upload", path_str(&bindings_csv), "--kind", "bindings", "--server", &server_url, "--key", &bank_key],
    )?;
    let bindings_secs = t.elapsed().as_secs_f64();

    let received = dir.join("received.jsonl");
    let _receiver = if batch_events == 0 {
        None
    } else {
        let receiver_port = free_port()?;
        let receiver = Killed(
            Command::new(&bin)
                .args(["webhook-receiver", "--listen", &format!("127.0.0.1:{receiver_port}")])
                .stdout(std::fs::File::create(&received)?)
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_for_port(receiver_port)?;
        let out = Command::new("curl")
            .args([
                "-s",
                "-X",
                "POST",
                &format!("{server_url}/v1/webhook-endpoints"),
                "-H",
                &format!("Authorization: Bearer {bank_key}"),
            ])
            .args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &format!("{{\"url\": \"http://127.0.0.1:{receiver_port}/hook\", \"batchEvents\": {batch_events}}}"),
            ])
            .output()
            .context("curl")?;
        if !String::from_utf8_lossy(&out.stdout).contains("whsec_") {
            bail!("registering the endpoint failed: {}", String::from_utf8_lossy(&out.stdout));
        }
        Some(receiver)
    };

    let t = Instant::now();
    run_json(&bin, &dir, &["upload", path_str(&disconnects_csv), "--server", &server_url, "--key", &carrier_key])?;
    let fanout_secs = t.elapsed().as_secs_f64();
    let committed = Instant::now();
    let deadline = Duration::from_secs(3600);
    if batch_events > 0 {
        let mut delivered = GrowingLines::open(&received)?;
        while delivered.count()? < n {
            if committed.elapsed() > deadline {
                bail!("only {} of {n} deliveries after an hour", delivered.count()?);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let last_delivery_secs = committed.elapsed().as_secs_f64();
    let total_delivery_secs = t.elapsed().as_secs_f64();
    drop(server);
    drop(guard);

    let rate = |count: usize, secs: f64| format!("{:.0}", count as f64 / secs);
    match batch_events {
        0 => println!("\n| what ({n} bound numbers; no webhook endpoint) | time | rate |"),
        _ => println!("\n| what ({n} bound numbers; the endpoint takes {batch_events} a request) | time | rate |"),
    }
    println!("|---|---|---|");
    println!(
        "| binding file registered (upload to job finished) | {bindings_secs:.1} s | {} bindings/s |",
        rate(n, bindings_secs)
    );
    println!(
        "| peer: the same disconnection file on unbound numbers (upload to job finished) | {unbound_secs:.1} s | {} events/s |",
        rate(n, unbound_secs)
    );
    println!(
        "| disconnection file applied, notifications created (upload to job finished) | {fanout_secs:.1} s | {} notifications/s; {:.2}x the peer's time |",
        rate(n, fanout_secs),
        fanout_secs / unbound_secs
    );
    if batch_events == 0 {
        return Ok(());
    }
    println!(
        "| deliveries, upload start to last delivery received | {total_delivery_secs:.1} s | {} deliveries/s |",
        rate(n, total_delivery_secs)
    );
    println!("| from the file's last commit to the last delivery | {last_delivery_secs:.1} s | |");
    Ok(())
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Waits until process `pid` has used under 2% of a core for a whole second (at most 15 minutes);
/// returns the seconds waited.
fn wait_idle(pid: u32) -> Result<f64> {
    // utime + stime, in clock ticks (100 a second here): fields 14 and 15 of /proc/PID/stat, counted
    // after the command's closing parenthesis.
    let ticks = || -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let after = &stat[stat.rfind(')').context("/proc/PID/stat")? + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
    };
    let start = Instant::now();
    let mut last = ticks()?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = ticks()?;
        if now - last <= 2 {
            return Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > Duration::from_secs(900) {
            bail!("the server was still busy after 15 minutes");
        }
        last = now;
    }
}

/// Asks a CAMARA check of the server on `port` until one is answered with 200 (while the server
/// starts, the connection is refused).
fn first_answer(port: u16, key: &str, number: &str) -> Result<()> {
    use std::io::{Read, Write};
    let body = format!(r#"{{"phoneNumber":"{number}","specifiedDate":"2024-06-30"}}"#);
    let request = format!(
        "POST /number-recycling/v0.2/check HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let start = Instant::now();
    loop {
        let mut reply = Vec::new();
        let answered = std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut s| s.write_all(request.as_bytes()).and_then(|()| s.read_to_end(&mut reply)))
            .is_ok();
        if answered && reply.starts_with(b"HTTP/1.1 200") {
            return Ok(());
        }
        if answered && !reply.is_empty() {
            bail!("the check was answered with {}", String::from_utf8_lossy(&reply[..reply.len().min(200)]));
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("no check answered on port {port} after 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until something listens on the port (the process just started).
pub(crate) fn wait_for_port(port: u16) -> Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("nothing listens on port {port} after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
