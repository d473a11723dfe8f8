//! Project automation: `cargo xtask test` (the whole suite, on SQLite and on a throwaway PostgreSQL
//! cluster), `cargo xtask ci` (formatting, lints, docs, the tests, then the fuzz targets),
//! `cargo xtask bench` (whole-system benchmarks), `cargo xtask screenshots` (the pages, for the
//! README), `cargo xtask fuzz` (the fuzz targets in `fuzz/`, a minute each in CI).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod screenshots;
#[cfg(test)]
mod tidy;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("bench") => bench::bench(&root(), &args[1..]),
        Some("screenshots") => screenshots::screenshots(&root()),
        Some("fuzz") => fuzz(&args[1..]),
        Some("crash") => crash(&args[1..]),
        Some("soak") => soak(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [cargo test args…] | ci | screenshots | fuzz [--secs N] [target…] | crash [--cycles N] [--postgres] [--seed S] | soak [--minutes M] | bench [--only index|lifecycle|lifecycle-order|fanout|http|retention] [--numbers N] [--check-rows N] [--events N] [--bindings N] [--batch-events N] [--checks N]>"
            );
            std::process::exit(2)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn ci() -> Result<()> {
    let root = root();
    run(Command::new("cargo").current_dir(&root).args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo").current_dir(&root).args(["fmt", "--check", "--manifest-path", "fuzz/Cargo.toml"]))?;
    run(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").current_dir(&root).env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
    ]))?;
    // CI must run the PostgreSQL half of the suite, not skip it.
    test_with(&[], true)?;
    crash(&["--cycles".to_string(), CRASH_CI_CYCLES_SQLITE.to_string()])?;
    crash(&["--cycles".to_string(), CRASH_CI_CYCLES_POSTGRES.to_string(), "--postgres".to_string()])?;
    fuzz(&["--secs".to_string(), FUZZ_CI_SECS.to_string()])
}

/// Cycles of the crash loop CI runs on each backend.
const CRASH_CI_CYCLES_SQLITE: u64 = 200;
const CRASH_CI_CYCLES_POSTGRES: u64 = 50;

/// `cargo xtask crash [--cycles N] [--postgres] [--seed S]`: the crash loop (`bench crash`), N cycles
/// (default 200) of a mixed load against a release `numlink serve` killed with SIGKILL at a random
/// moment and started again, every invariant checked after each restart; on SQLite, or on a
/// throwaway durable PostgreSQL cluster. The seed (default: the process id) is printed, so that a
/// failing run can be run again as it was.
fn crash(args: &[String]) -> Result<()> {
    let root = root();
    let mut cycles = CRASH_CI_CYCLES_SQLITE;
    let mut postgres = false;
    let mut seed = u64::from(std::process::id());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cycles" => cycles = it.next().context("--cycles N")?.parse().context("--cycles N")?,
            "--seed" => seed = it.next().context("--seed S")?.parse().context("--seed S")?,
            "--postgres" => postgres = true,
            other => bail!("unknown flag {other:?}: cargo xtask crash [--cycles N] [--postgres] [--seed S]"),
        }
    }
    run(Command::new("cargo").current_dir(&root).args(["build", "--release", "-p", "numlink", "-p", "bench"]))?;
    let dir = std::env::temp_dir().join(format!("numlink-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let cluster = if postgres { Some(PgCluster::start_durable()?) } else { None };
    let db = cluster.as_ref().map_or_else(|| format!("sqlite://{}", dir.join("numlink.db").display()), PgCluster::url);
    eprintln!("the crash loop: {cycles} cycles on {db}, seed {seed}");
    let port = bench::free_port()?;
    let outcome = run(Command::new(bench::release(&root, "bench")).args([
        "crash",
        "--numlink",
        path(&bench::release(&root, "numlink")),
        "--dir",
        path(&dir),
        "--db",
        &db,
        "--cycles",
        &cycles.to_string(),
        "--seed",
        &seed.to_string(),
        "--port",
        &port.to_string(),
    ]));
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("the run's files (server.log, the database) are kept in {}", dir.display());
    }
    outcome
}

/// `cargo xtask soak [--minutes M]`: a release server on SQLite, a real webhook receiver behind the
/// bank's endpoint, and `bench soak`: the mixed load's peak measured, then M minutes (default 10) at
/// half of it. Prints the run's JSON, then the verdict against issue 20's bar (no errors; the last
/// minute's p99 within 1.5 times the first's; resident memory growing under 5% after the first
/// minute), and fails if any request failed.
fn soak(args: &[String]) -> Result<()> {
    let root = root();
    let minutes: u64 = match args {
        [] => 10,
        [flag, m] if flag == "--minutes" => m.parse().context("--minutes M")?,
        _ => bail!("cargo xtask soak [--minutes M]"),
    };
    run(Command::new("cargo").current_dir(&root).args(["build", "--release", "-p", "numlink", "-p", "bench"]))?;
    let bin = bench::release(&root, "numlink");
    let dir = std::env::temp_dir().join(format!("numlink-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // The load is one client, on loopback: its rates are not what is measured.
    std::fs::write(
        dir.join("numlink.toml"),
        "[rate_limits]\ncarrier = { per_sec = 0 }\ninstitution = { per_sec = 0 }\nanonymous_per_client = { per_sec = 0 }\n\
         [holder]\notp_requests_per_client_per_hour_max = 100000000\notp_sends_per_hour_max = 1000000\n\
         otp_sends_per_day_max = 1000000\notp_sends_per_number_per_day_max = 1000000\n",
    )?;
    let key = |args: &[&str]| -> Result<String> {
        bench::json_field(&bench::run_json(&bin, &dir, args)?, "apiKey").context("an API key")
    };
    let carrier = key(&[
        "participant",
        "add",
        "--role",
        "carrier",
        "--name",
        "C",
        "--prefix",
        "+86138",
        "--reporting-since",
        "2020-01-01",
    ])?;
    let bank = key(&["participant", "add", "--role", "institution", "--name", "B"])?;
    let port = bench::free_port()?;
    let outbox = dir.join("sms.jsonl");
    let mut server = Command::new(&bin)
        .current_dir(&dir)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-loopback-webhooks",
            "--sms-outbox",
            path(&outbox),
        ])
        .env("NUMLINK_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()?;
    let receiver_port = bench::free_port()?;
    let mut receiver = Command::new(&bin)
        .args(["webhook-receiver", "--listen", &format!("127.0.0.1:{receiver_port}")])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    bench::wait_for_port(port)?;
    bench::wait_for_port(receiver_port)?;
    let endpoint = format!("{{\"url\":\"http://127.0.0.1:{receiver_port}/hook\"}}");
    run(Command::new("curl")
        .args(["-sf", "-o", "/dev/null", &format!("http://127.0.0.1:{port}/v1/webhook-endpoints")])
        .args([
            "-H",
            &format!("Authorization: Bearer {bank}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &endpoint,
        ]))?;
    let out = Command::new(bench::release(&root, "bench"))
        .args(["soak", "--port", &port.to_string(), "--pid", &server.id().to_string(), "--carrier", &carrier])
        .args(["--bank", &bank, "--minutes", &minutes.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let _ = server.kill();
    let _ = server.wait();
    let _ = receiver.kill();
    let _ = receiver.wait();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("{line}");
    if !out.status.success() {
        bail!("the soak failed; its files are in {}", dir.display());
    }
    let field = |k: &str| bench::json_number(&line, k);
    let (errors, ratio, growth, anon) = (field("errors"), field("p99Ratio"), field("rssGrowth"), field("anonGrowth"));
    eprintln!(
        "errors {errors} (bar: 0); p99 last/first minute {ratio:.2} (bar: 1.5); resident memory growth after warm-up \
         {:.1}% in all, {:.1}% of it anonymous (bar: 5%)",
        growth * 100.0,
        anon * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    if errors != 0.0 {
        bail!("{errors} requests failed during the soak");
    }
    Ok(())
}

/// Seconds CI gives each fuzz target.
const FUZZ_CI_SECS: u64 = 60;

/// The fuzz targets (`fuzz/fuzz_targets/`), each run from its seeds (`fuzz/seeds/<target>/`, inputs
/// taken from the tests) and the corpus it grew before (`fuzz/corpus/<target>/`, not tracked).
const FUZZ_TARGETS: [&str; 6] =
    ["csv_files", "text_values", "session_tokens", "attestation_verify", "webhook_signatures", "api_bodies"];

/// `cargo xtask fuzz [--secs N] [target…]`: builds the fuzz targets with nightly and libFuzzer
/// (`cargo fuzz`, installed from crates.io when missing) and runs each for N seconds (default 60). A
/// crash fails the command, naming the input that caused it, kept under `fuzz/artifacts/<target>/`.
fn fuzz(args: &[String]) -> Result<()> {
    let root = root();
    let mut secs = FUZZ_CI_SECS;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => secs = it.next().context("--secs needs a number")?.parse().context("--secs N")?,
            t if FUZZ_TARGETS.contains(&t) => targets.push(t),
            other => bail!("unknown fuzz target or flag {other:?}: the targets are {FUZZ_TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let has_fuzz = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_fuzz {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    // The nightly toolchain builds the targets (libFuzzer's instrumentation); a scratch directory in
    // memory, where the machine has one, keeps the API target's database writes off the disk.
    let scratch = Path::new("/dev/shm");
    let fuzz = |cmd: &mut Command| -> Result<()> {
        cmd.current_dir(&root).env_remove("RUSTFLAGS");
        if scratch.is_dir() {
            cmd.env("TMPDIR", scratch);
        }
        run(cmd)
    };
    fuzz(Command::new("cargo").args(["+nightly", "fuzz", "build"]))?;
    for target in targets {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = root.join("fuzz/seeds").join(target);
        fuzz(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", target])
                .arg(&corpus)
                .arg(&seeds)
                .args(["--", &format!("-max_total_time={secs}"), "-timeout=10", "-rss_limit_mb=4096"])
                .args(["-print_final_stats=1"]),
        )
        .with_context(|| format!("the fuzz target {target} failed: see fuzz/artifacts/{target}/"))?;
    }
    Ok(())
}

fn test(extra: &[String]) -> Result<()> {
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    test_with(extra, required)
}

fn test_with(extra: &[String], pg_required: bool) -> Result<()> {
    let root = root();
    let cluster = match PgCluster::start() {
        Ok(c) => Some(c),
        Err(e) if !pg_required => {
            eprintln!("NOTE: the PostgreSQL tests are SKIPPED: {e:#}");
            None
        }
        Err(e) => {
            return Err(e.context("the PostgreSQL tests must run here (CI=true) but no cluster could be started"));
        }
    };
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root).args(["test", "--workspace"]).args(extra);
    // Where the PostgreSQL tests must run, so must the browser tests (they skip, and say so, elsewhere).
    if pg_required {
        cmd.env("NUMLINK_BROWSER_REQUIRED", "1");
    } else {
        cmd.env_remove("NUMLINK_BROWSER_REQUIRED");
    }
    if let Some(c) = &cluster {
        cmd.env("NUMLINK_TEST_PG", c.url()).env("NUMLINK_TEST_PG_REQUIRED", "1");
        // For the tests that start clusters of their own (a primary and its standby).
        cmd.env("NUMLINK_PG_BIN", &c.bin);
    } else {
        cmd.env_remove("NUMLINK_TEST_PG").env_remove("NUMLINK_PG_BIN");
    }
    let result = run_counting(&mut cmd);
    drop(cluster);
    result
}

/// Runs `cargo test`, passing its output through, and ends with one summary line over all test
/// binaries, so the last line says how many tests ran, not the count of the last binary.
fn run_counting(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader};
    eprintln!("$ {cmd:?}");
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 60 passed; 0 failed; 0 ignored; …"
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match kind {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;
    println!("summary: {passed} passed, {failed} failed");
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Settings of a durable cluster for benchmarks: every commit flushed, sized for bulk writes.
const DURABLE: &str = "-c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min";

/// A PostgreSQL cluster in a temporary directory, on a free loopback port, stopped and removed on drop.
pub(crate) struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

fn find_pg_bin() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("NUMLINK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().context("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install postgresql-15)")
}

impl PgCluster {
    /// A cluster for tests: nothing is flushed to disk (fast, and lost with the machine).
    fn start() -> Result<PgCluster> {
        PgCluster::start_with("-c fsync=off -c full_page_writes=off")
    }

    /// A cluster for benchmarks, durable as a deployment's: every commit flushed, settings sized for
    /// bulk writes (a deployment's are larger).
    pub(crate) fn start_durable() -> Result<PgCluster> {
        PgCluster::start_with(DURABLE)
    }

    fn start_with(settings: &str) -> Result<PgCluster> {
        let cluster = PgCluster::empty("", find_pg_bin()?)?;
        let data = cluster.dir.join("data");
        cluster.pg("initdb", &["-D", path(&data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])?;
        cluster.run_server(settings)?;
        eprintln!("started a throwaway PostgreSQL cluster at {}", cluster.url());
        Ok(cluster)
    }

    /// A cluster not yet made: its directory (`numlink-pg-<pid><suffix>`, the `postgres` user's when run
    /// as root, since PostgreSQL refuses to run as root) and a free loopback port.
    fn empty(suffix: &str, bin: PathBuf) -> Result<PgCluster> {
        let as_postgres_user =
            Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("numlink-pg-{}{suffix}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if as_postgres_user {
            run(Command::new("chown").arg("postgres:").arg(&dir))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Ok(PgCluster { dir, bin, port, as_postgres_user })
    }

    /// Starts the server of `data` on the cluster's port, with `settings`.
    fn run_server(&self, settings: &str) -> Result<()> {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 {settings}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        self.pg("pg_ctl", &["-D", path(&data), "-o", &opts, "-l", path(&log), "-w", "start"])
    }

    fn pg(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).stdout(std::process::Stdio::null());
        run(&mut cmd)
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A durable primary whose every commit waits for its standby (`standby1`, [`PgCluster::standby`]).
    pub(crate) fn start_durable_primary() -> Result<PgCluster> {
        PgCluster::start_with(&format!("{DURABLE} -c synchronous_standby_names=standby1"))
    }

    /// A durable streaming-replication standby of this cluster, named `standby1`, in a directory and on
    /// a port of its own; once promoted it waits for no standby of its own.
    pub(crate) fn standby(&self) -> Result<PgCluster> {
        let standby = PgCluster::empty("-standby", self.bin.clone())?;
        let data = standby.dir.join("data");
        let from = format!("host=127.0.0.1 port={} user=postgres", self.port);
        standby.pg("pg_basebackup", &["-d", &from, "-D", path(&data), "-X", "stream", "-R"])?;
        let conf = format!("primary_conninfo = '{from} application_name=standby1'\nsynchronous_standby_names = ''\n");
        let mut auto = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.auto.conf"))?;
        std::io::Write::write_all(&mut auto, conf.as_bytes())?;
        drop(auto);
        standby.run_server(DURABLE)?;
        Ok(standby)
    }

    /// Stops the server at once, as when its machine is lost.
    pub(crate) fn stop_now(&self) -> Result<()> {
        self.pg("pg_ctl", &["-D", path(&self.dir.join("data")), "-m", "immediate", "-w", "stop"])
    }

    /// Promotes a standby to primary, waiting until it takes writes.
    pub(crate) fn promote(&self) -> Result<()> {
        self.pg("pg_ctl", &["-D", path(&self.dir.join("data")), "-w", "promote"])
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.pg("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
