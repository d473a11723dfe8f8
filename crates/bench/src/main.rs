//! `bench lifecycle-order --events N --dir DIR [--pg URL]`: N disconnections of random numbers applied
//! as a job, sorted by number and in random order, each into a fresh registry (and on PostgreSQL).
//! `bench lifecycle --events N --dir DIR`: a carrier's lifecycle file of N events applied as a job
//! (spooled file, job runner, durable chunks on SQLite), against a plain rusqlite insert of the same
//! rows into a table of the same shape, in chunks of the same size, in the same run.
//!
//! `bench registry --numbers N --db FILE --sample FILE`: writes the registry below into a SQLite store
//! (for a server to open) and a sample of numbers to ask about, one per line (90% from the registry,
//! 10% from unallocated blocks), for the HTTP benchmark's load scripts.
//!
//! `bench registry … --check-file FILE --check-rows N` also writes a check file (`phone_number,date`) of N
//! questions drawn like the sample.
//!
//! `bench pg-peer --url URL --numbers N --check-file FILE --out FILE`: the check file's peer on PostgreSQL:
//! the same registry (same seed) loaded into an indexed table, then, timed, the file `COPY`ed into a
//! temporary table, `LEFT JOIN`ed on the registry with the answer computed from the same facts by a
//! `CASE`, and the result `COPY`ed out in input order to FILE. Prints `{"load_secs", "peer_secs"}`.
//!
//! `bench follow --a PORT --b PORT --carrier KEY --bank KEY [--secs S] [--loaders N]`: two servers on one
//! database; how long after node A acknowledges an event node B answers from it, while loaders post
//! events to A (`follow.rs`). Prints one JSON object.
//!
//! `bench writes --a PORT --b PORT --carrier KEY [--secs S]`: a caller's writes through both nodes
//! while the database fails over: each batch sent again to the other node until it is acknowledged;
//! the longest wait between acknowledgements (`failover.rs`). Prints one JSON object.
//!
//! `bench crash --numlink BIN --dir DIR --db URL --port N [--cycles N] [--seed S]`: the crash loop
//! (`crash.rs`, run by `cargo xtask crash`): a real server under a mixed load, killed at random and
//! started again, every invariant checked after each restart. Prints a JSON line a cycle.
//!
//! `bench soak --port N --pid PID --carrier KEY --bank KEY [--minutes M] [--peak-secs S]`: a server
//! held at half its measured peak under a mixed load for M minutes (`soak.rs`, run by
//! `cargo xtask soak`): latency per minute, errors, resident memory. Prints one JSON object.
//!
//! `bench bare --listen ADDR`: the HTTP peer, a bare axum handler answering every POST with a fixed
//! JSON body, on the same runtime settings as the server.
//!
//! `bench retention --checks N --dir DIR`: the check log's upkeep after a bank checked N numbers in one
//! day (as check files' chunks of 100,000): the tags moved into `check_tags` by the idle writer, and 181
//! days later the log dropped, each a step at a time as the server does; every step's time on the
//! writer, in total and the longest. Prints one JSON object.
//!
//! `bench index --numbers N --dir DIR`: the in-memory index measured in-process, on a registry shaped
//! like a Chinese carrier's (11-digit national numbers, allocated in whole 10,000-number blocks under
//! 7-digit prefixes, with realistic shares of reissued, disconnected, transferred and ported numbers),
//! against peers measured in the same run. Prints one JSON object; `cargo xtask bench` tabulates it.
//!
//! What is measured: building the index in memory, and from a SQLite store at start (`Store::open`);
//! bytes per number; random point lookups (`Index::answer`) on one core, against a `HashMap` holding
//! the same facts.

mod crash;
mod failover;
mod follow;
mod soak;

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use domain::{Day, FixedClock, NumberFacts, PhoneNumber, Prefix, Summary, reassigned_since};
use index::Index;
use serde_json::json;

/// Concurrent callers of the audited check path.
const CALLERS: usize = 32;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn day(s: &str) -> Day {
    Day::parse(s).expect("a valid date")
}

/// The registry: `numbers` numbers in whole blocks under distinct random 7-digit prefixes of +861,
/// each with the summary of a plausible life. Sorted by number, as the store's scan yields them.
fn registry(numbers: u64, rng: &mut Rng) -> Vec<(PhoneNumber, Summary)> {
    let blocks = numbers.div_ceil(index::BLOCK_NUMBERS);
    let mut prefixes: Vec<u64> = Vec::with_capacity(blocks as usize);
    let mut seen = std::collections::HashSet::new();
    while (prefixes.len() as u64) < blocks {
        // 1300000..=1999999: the 7-digit prefixes of Chinese mobile numbers (13x..19x).
        let p = 1_300_000 + rng.below(700_000);
        if seen.insert(p) {
            prefixes.push(p);
        }
    }
    prefixes.sort_unstable();
    let base = day("2020-01-01");
    let mut out = Vec::with_capacity(numbers as usize);
    'all: for p in prefixes {
        for i in 0..index::BLOCK_NUMBERS {
            if out.len() as u64 == numbers {
                break 'all;
            }
            let digits = 86 * 100_000_000_000 + p * 10_000 + i;
            let n = PhoneNumber::from_digits(digits).expect("an E.164 number");
            let act = base.plus_days(rng.below(1_800) as i32);
            let later = act.plus_days(30 + rng.below(600) as i32);
            let s = match rng.below(100) {
                // Activated during coverage and still held.
                0..=71 => Summary { first_event: Some(act), last_activation: Some(act), ..Summary::default() },
                // Disconnected, waiting out the aging period.
                72..=83 => Summary {
                    first_event: Some(act),
                    last_end: Some(later),
                    disconnected: true,
                    last_activation: Some(act),
                    serving: None,
                },
                // Reissued to someone else after the aging period.
                84..=93 => Summary {
                    first_event: Some(act),
                    last_end: Some(later),
                    last_activation: Some(later.plus_days(90 + rng.below(200) as i32)),
                    disconnected: false,
                    serving: None,
                },
                // Transferred without disconnection.
                94..=97 => Summary {
                    first_event: Some(act),
                    last_end: Some(later),
                    last_activation: Some(act),
                    ..Summary::default()
                },
                // Ported only: no change of holder.
                _ => Summary { first_event: Some(act), ..Summary::default() },
            };
            out.push((n, s));
        }
    }
    out
}

/// Asks the index every query; counts the "yes" answers (so that nothing is optimized away).
#[inline(never)]
fn index_lookups(ix: &Index, queries: &[(PhoneNumber, Day)], today: Day) -> u64 {
    queries.iter().filter(|(n, d)| matches!(black_box(ix.answer(*n, *d, today)), Ok(domain::Answer::Yes))).count()
        as u64
}

/// The same, a thousand questions per call (as `/v1/reassignment-checks` and check files ask).
#[inline(never)]
fn index_lookups_many(ix: &Index, queries: &[(PhoneNumber, Day)], today: Day) -> u64 {
    let mut out = Vec::with_capacity(1000);
    let mut yes = 0;
    for chunk in queries.chunks(1000) {
        out.clear();
        ix.answer_many(chunk, today, &mut out);
        yes += black_box(&out).iter().filter(|a| matches!(a, Ok(domain::Answer::Yes))).count() as u64;
    }
    yes
}

/// The same questions to the peer: a `HashMap` from number to facts, then the same R2 function.
#[inline(never)]
fn peer_lookups(peer: &HashMap<u64, NumberFacts>, queries: &[(PhoneNumber, Day)], today: Day) -> u64 {
    let unknown = NumberFacts { coverage_start: Some(day("2019-06-01")), ..NumberFacts::default() };
    queries
        .iter()
        .filter(|(n, d)| {
            let facts = peer.get(&n.digits()).copied().unwrap_or(unknown);
            matches!(black_box(reassigned_since(&facts, *d, today)), Ok(domain::Answer::Yes))
        })
        .count() as u64
}

/// Questions: 90% numbers of the registry, 10% numbers of unallocated blocks; dates over 2018..2026.
fn questions(reg: &[(PhoneNumber, Summary)], count: usize, rng: &mut Rng) -> Vec<(PhoneNumber, Day)> {
    (0..count)
        .map(|_| {
            let n = if rng.below(10) < 9 {
                reg[rng.below(reg.len() as u64) as usize].0
            } else {
                PhoneNumber::from_digits(86 * 100_000_000_000 + 1_300_000 * 10_000 + rng.below(7_000_000_000))
                    .expect("a number")
            };
            (n, day("2018-01-01").plus_days(rng.below(3_200) as i32))
        })
        .collect()
}

/// The check file's peer on PostgreSQL (see the module's docs).
fn pg_peer(url: &str, numbers: u64, check_file: &std::path::Path, out: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let t = Instant::now();
    c.batch_execute(
        "DROP TABLE IF EXISTS registry;
         CREATE TABLE registry (number BIGINT NOT NULL, first_event INT, last_end INT, last_activation INT,
                                disconnected BOOLEAN NOT NULL)",
    )?;
    {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let reg = registry(numbers, &mut rng);
        let mut w = c.copy_in("COPY registry FROM STDIN")?;
        let mut buf = Vec::with_capacity(1 << 20);
        let opt = |d: Option<Day>| d.map_or("\\N".to_string(), |d| d.packed().to_string());
        for (n, s) in &reg {
            writeln!(
                buf,
                "{}\t{}\t{}\t{}\t{}",
                n.digits(),
                opt(s.first_event),
                opt(s.last_end),
                opt(s.last_activation),
                s.disconnected
            )?;
            if buf.len() > (1 << 20) - 128 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)?;
        w.finish()?;
    }
    c.batch_execute("ALTER TABLE registry ADD PRIMARY KEY (number); ANALYZE registry")?;
    let load_secs = t.elapsed().as_secs_f64();

    // Timed: the file in, the join, the result out in input order.
    let t = Instant::now();
    c.batch_execute("CREATE TEMP TABLE q (line BIGSERIAL, phone_number TEXT, date TEXT)")?;
    {
        let mut w = c.copy_in("COPY q (phone_number, date) FROM STDIN (FORMAT csv, HEADER true)")?;
        let mut f = std::fs::File::open(check_file)?;
        std::io::copy(&mut f, &mut w)?;
        w.finish()?;
    }
    let mut r = c.copy_out(
        "COPY (SELECT q.phone_number, q.date, CASE
                 WHEN q.date > '2026-11-29' THEN 'OUT_OF_RANGE'
                 WHEN q.date < '2019-06-01' THEN 'no_data'
                 WHEN r.number IS NULL THEN 'no'
                 WHEN r.last_end >= replace(q.date, '-', '')::int
                   OR r.last_activation >= replace(q.date, '-', '')::int AND r.last_end IS NOT NULL THEN 'yes'
                 ELSE 'no' END
               FROM q LEFT JOIN registry r ON r.number = substr(q.phone_number, 2)::bigint
               ORDER BY q.line) TO STDOUT (FORMAT csv, HEADER true)",
    )?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    std::io::copy(&mut r, &mut f)?;
    f.flush()?;
    let peer_secs = t.elapsed().as_secs_f64();
    println!("{}", json!({ "load_secs": load_secs, "peer_secs": peer_secs }));
    Ok(())
}

/// The HTTP peer: every POST answered with the same small JSON body, nothing read or checked.
fn bare(listen: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let app = axum::Router::new().fallback(axum::routing::post(|| async {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], r#"{"phoneNumberRecycled":false}"#)
        }));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

fn ranges() -> Vec<(Prefix, Option<Day>)> {
    vec![(Prefix::parse("+861").expect("a prefix"), Some(day("2019-06-01")))]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let dir = PathBuf::from(arg("--dir").unwrap_or_else(|| std::env::temp_dir().display().to_string()));
    match args.first().map(String::as_str) {
        Some("follow") => return follow::run(&args),
        Some("crash") => return crash::run(&args),
        Some("soak") => return soak::run(&args),
        Some("writes") => return failover::run(&args),
        Some("index") => {}
        Some("registry") => {
            let numbers: u64 = arg("--numbers").map_or(Ok(1_000_000), |v| v.parse()).context("--numbers N")?;
            let db = PathBuf::from(arg("--db").context("--db FILE")?);
            let sample = PathBuf::from(arg("--sample").context("--sample FILE")?);
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let reg = registry(numbers, &mut rng);
            write_tables(&db, &reg)?;
            let mut f = std::io::BufWriter::new(std::fs::File::create(&sample)?);
            for q in questions(&reg, 100_000, &mut rng) {
                std::io::Write::write_all(&mut f, format!("{}\n", q.0).as_bytes())?;
            }
            std::io::Write::flush(&mut f)?;
            if let Some(path) = arg("--check-file") {
                let rows: usize =
                    arg("--check-rows").map_or(Ok(10_000_000), |v| v.parse()).context("--check-rows N")?;
                let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
                std::io::Write::write_all(&mut f, b"phone_number,date\n")?;
                for (n, d) in questions(&reg, rows, &mut rng) {
                    std::io::Write::write_all(&mut f, format!("{n},{d}\n").as_bytes())?;
                }
                std::io::Write::flush(&mut f)?;
            }
            return Ok(());
        }
        Some("pg-peer") => {
            let numbers: u64 = arg("--numbers").map_or(Ok(1_000_000), |v| v.parse()).context("--numbers N")?;
            return pg_peer(
                &arg("--url").context("--url URL")?,
                numbers,
                &PathBuf::from(arg("--check-file").context("--check-file FILE")?),
                &PathBuf::from(arg("--out").context("--out FILE")?),
            );
        }
        Some("bare") => return bare(&arg("--listen").context("--listen ADDR")?),
        Some("lifecycle") => {
            let events: u64 = arg("--events").map_or(Ok(1_000_000), |v| v.parse()).context("--events N")?;
            return lifecycle(events, &dir);
        }
        Some("lifecycle-order") => {
            let events: u64 = arg("--events").map_or(Ok(1_000_000), |v| v.parse()).context("--events N")?;
            return lifecycle_order(events, &dir, arg("--pg").as_deref());
        }
        Some("retention") => {
            let checks: u64 = arg("--checks").map_or(Ok(1_000_000), |v| v.parse()).context("--checks N")?;
            return retention(checks, &dir);
        }
        _ => bail!(
            "usage: bench index [--numbers N] [--dir DIR] | bench lifecycle [--events N] [--dir DIR] | \
             bench lifecycle-order [--events N] [--dir DIR] | \
             bench registry --numbers N --db FILE --sample FILE | bench bare --listen ADDR"
        ),
    }
    let numbers: u64 = arg("--numbers").map_or(Ok(1_000_000), |v| v.parse()).context("--numbers N")?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let t = Instant::now();
    let reg = registry(numbers, &mut rng);
    eprintln!("generated {} numbers in {:.1} s", reg.len(), t.elapsed().as_secs_f64());

    // Build in memory, in number order.
    let t = Instant::now();
    let mut ix = Index::new(ranges());
    for (n, s) in &reg {
        ix.put(*n, s);
    }
    let build_memory_secs = t.elapsed().as_secs_f64();
    let bytes_per_number = ix.memory_bytes() as f64 / ix.numbers() as f64;

    // Queries: 90% numbers of the registry, 10% numbers of unallocated blocks; dates over 2018..2026.
    let today = day("2026-11-29");
    let queries = questions(&reg, 10_000_000, &mut rng);
    let t = Instant::now();
    let yes = index_lookups(&ix, &queries, today);
    let lookup_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let yes_many = index_lookups_many(&ix, &queries, today);
    let lookup_many_secs = t.elapsed().as_secs_f64();
    if yes != yes_many {
        bail!("answer_many disagrees with answer: {yes_many} yes against {yes}");
    }

    // Peer: a HashMap from number to the same facts, asked the same questions.
    let t = Instant::now();
    let mut peer: HashMap<u64, NumberFacts> = HashMap::with_capacity(reg.len());
    for (n, s) in &reg {
        peer.insert(
            n.digits(),
            NumberFacts {
                coverage_start: Some(day("2019-06-01")),
                last_end: s.last_end,
                last_activation: s.last_activation,
                disconnected: s.disconnected,
            },
        );
    }
    let peer_build_secs = t.elapsed().as_secs_f64();
    let peer_bytes_per_number =
        (peer.capacity() * (std::mem::size_of::<(u64, NumberFacts)>() + 1)) as f64 / reg.len() as f64;
    let t = Instant::now();
    let peer_yes = peer_lookups(&peer, &queries, today);
    let peer_lookup_secs = t.elapsed().as_secs_f64();
    if yes != peer_yes {
        bail!("the index and the peer disagree: {yes} yes against {peer_yes}");
    }
    drop(peer);

    // Build from a SQLite store at start: the registry written to the tables, then Store::open.
    let db = dir.join(format!("bench-index-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    write_tables(&db, &reg)?;
    // Peer: a plain rusqlite scan of the same rows, reading the same columns, doing nothing with them.
    let t = Instant::now();
    let scanned = {
        let c = rusqlite::Connection::open(&db)?;
        let mut stmt = c.prepare("SELECT number, first_event, last_end, last_activation, disconnected FROM numbers")?;
        let mut rows = stmt.query([])?;
        let mut sum = 0i64;
        while let Some(r) = rows.next()? {
            sum = sum.wrapping_add(r.get::<_, i64>(0)?);
            sum = sum.wrapping_add(r.get::<_, Option<i64>>(1)?.unwrap_or(0));
            sum = sum.wrapping_add(r.get::<_, Option<i64>>(2)?.unwrap_or(0));
            sum = sum.wrapping_add(r.get::<_, Option<i64>>(3)?.unwrap_or(0));
            sum = sum.wrapping_add(r.get::<_, i64>(4)?);
        }
        black_box(sum)
    };
    let _ = scanned;
    let scan_secs = t.elapsed().as_secs_f64();
    let key = store::HashKey::generate();
    let clock = Arc::new(FixedClock::at_day(today));
    let t = Instant::now();
    let st = store::Store::open(store::StoreConfig::new(store::DbUrl::Sqlite(db.clone()), key.clone(), clock.clone()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let build_store_secs = t.elapsed().as_secs_f64();
    let (store_numbers, _, _) = st.index_stats();
    // Audited checks through the store, 1,000 per call as `/v1/reassignment-checks` makes them: each answer
    // from the index, each number's audit record in the group commit (durable, synchronous=FULL).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (audited, bank) = rt.block_on(async {
        let bank = st
            .add_participant(store::NewParticipant {
                role: store::Role::Institution,
                name: "Bench Bank".into(),
                prefixes: vec![],
                reporting_since: None,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .0;
        let calls: Vec<Vec<(PhoneNumber, Day)>> = queries.chunks(1000).take(1000).map(<[_]>::to_vec).collect();
        let numbers: usize = calls.iter().map(Vec::len).sum();
        let t = Instant::now();
        // Concurrent callers, as concurrent requests would be: their calls share group commits.
        let mut tasks = Vec::new();
        for part in calls.chunks(calls.len().div_ceil(CALLERS)) {
            let (st, bank, part) = (st.clone(), bank.clone(), part.to_vec());
            tasks.push(tokio::spawn(async move {
                for items in part {
                    st.check(bank.clone(), items).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<_, anyhow::Error>((numbers as f64 / t.elapsed().as_secs_f64(), bank))
    })?;
    // A restart from the index's snapshot: written by the server above (as every few minutes and at
    // shutdown), then read at start instead of every number; its index proven equal to the one built
    // by reading every number (the same digest of the same contents).
    let scanned_digest = st.index_digest();
    drop(st);
    let snapshot = db.with_extension("db.index");
    let mut config = store::StoreConfig::new(store::DbUrl::Sqlite(db.clone()), key.clone(), clock.clone());
    config.index_snapshot = Some(snapshot.clone());
    let st = store::Store::open(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let written = rt
        .block_on(st.write_index_snapshot())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("no snapshot was written")?;
    drop(st);
    let t = Instant::now();
    let st = store::Store::open(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let first = rt.block_on(async { st.check(bank, vec![queries[0]]).await.map_err(|e| anyhow::anyhow!("{e}")) })?;
    let snapshot_start_secs = t.elapsed().as_secs_f64();
    black_box(first);
    if !matches!(st.index_origin(), store::IndexOrigin::Snapshot { .. }) {
        bail!("the snapshot was not used: {:?}", st.index_origin());
    }
    if st.index_digest() != scanned_digest {
        bail!("the index read from the snapshot differs from the one read from the tables");
    }
    drop(st);
    let _ = std::fs::remove_file(&snapshot);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    if store_numbers != ix.numbers() {
        bail!("the store's index has {store_numbers} numbers, the in-memory one {}", ix.numbers());
    }

    println!(
        "{}",
        json!({
            "numbers": ix.numbers(),
            "blocks": ix.blocks(),
            "bytes_per_number": bytes_per_number,
            "projection_1_8e9_gib": bytes_per_number * 1.8e9 / (1u64 << 30) as f64,
            "build_memory_numbers_per_s": ix.numbers() as f64 / build_memory_secs,
            "build_store_numbers_per_s": store_numbers as f64 / build_store_secs,
            "build_store_secs": build_store_secs,
            "snapshot_bytes": written.bytes,
            "snapshot_write_secs": written.seconds,
            "snapshot_start_secs": snapshot_start_secs,
            "audited_checks_per_s": audited,
            "peer_sqlite_scan_rows_per_s": reg.len() as f64 / scan_secs,
            "lookups_per_s": queries.len() as f64 / lookup_secs,
            "lookups_many_per_s": queries.len() as f64 / lookup_many_secs,
            "peer_hashmap_lookups_per_s": queries.len() as f64 / peer_lookup_secs,
            "peer_hashmap_build_numbers_per_s": reg.len() as f64 / peer_build_secs,
            "peer_hashmap_bytes_per_number": peer_bytes_per_number,
            "yes_answers": yes,
        })
    );
    Ok(())
}

/// The summaries as the store keeps them (`numbers`), written in one transaction, after the store has
/// created its schema and a carrier holding +861.
fn write_tables(db: &std::path::Path, reg: &[(PhoneNumber, Summary)]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let st = store::Store::open(store::StoreConfig::new(
        store::DbUrl::Sqlite(db.to_path_buf()),
        store::HashKey::generate(),
        Arc::new(FixedClock::at_day(day("2026-11-29"))),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    rt.block_on(st.add_participant(store::NewParticipant {
        role: store::Role::Carrier,
        name: "Bench Carrier".into(),
        prefixes: vec![Prefix::parse("+861").expect("a prefix")],
        reporting_since: Some(day("2019-06-01")),
    }))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(st);
    let mut c = rusqlite::Connection::open(db)?;
    c.execute_batch("PRAGMA synchronous = OFF")?;
    let tx = c.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO numbers (number, first_event, last_end, last_activation, disconnected, serving) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        )?;
        for (n, s) in reg {
            stmt.execute(rusqlite::params![
                n.digits() as i64,
                s.first_event.map(|d| d.packed()),
                s.last_end.map(|d| d.packed()),
                s.last_activation.map(|d| d.packed()),
                i64::from(s.disconnected),
            ])?;
        }
    }
    tx.commit()?;
    // On disk before anything is measured: written with synchronous = OFF, the registry (gigabytes at
    // 100,000,000 numbers) would otherwise still be flushing while the measured commits wait on the
    // same disk (audited checks at 100,000,000 numbers measured 0.9 M/s so, against 2.9 at 10,000,000).
    drop(c);
    std::fs::File::open(db)?.sync_all()?;
    Ok(())
}

/// A lifecycle file of `events` rows (each a distinct number, in whole blocks: activations, disconnections
/// and transfers, as a month's file would hold), applied by the job runner; then the peer.
/// Runs `step` until it says nothing is left; the steps' count, total and longest time, and their p99,
/// as `{prefix}_steps`, `{prefix}_secs`, `{prefix}_step_ms_max`, `{prefix}_step_ms_p99`.
async fn steps<F, Fut>(prefix: &str, mut step: F) -> Result<serde_json::Map<String, serde_json::Value>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, store::StoreError>>,
{
    let mut times = Vec::new();
    let all = Instant::now();
    loop {
        let t = Instant::now();
        let more = step().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !more {
            break;
        }
    }
    let total = all.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    let mut out = serde_json::Map::new();
    out.insert(format!("{prefix}_steps"), json!(times.len()));
    out.insert(format!("{prefix}_secs"), json!(total));
    out.insert(format!("{prefix}_step_ms_max"), json!(times[times.len() - 1]));
    out.insert(format!("{prefix}_step_ms_p99"), json!(p99));
    Ok(out)
}

fn retention(checks: u64, dir: &std::path::Path) -> Result<()> {
    const CALL: u64 = 100_000;
    let db = dir.join("numlink-bench-retention.db");
    for suffix in ["", "-wal", "-shm", ".key"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let clock = Arc::new(FixedClock::at_day(day("2026-01-01")));
    let key = store::HashKey::generate();
    let mut config = store::StoreConfig::new(store::DbUrl::Sqlite(db.clone()), key.clone(), clock.clone());
    // The steps are taken here, one after another, to be measured.
    config.upkeep_when_idle = false;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let out = rt.block_on(async {
        let st = store::Store::open(config)?;
        let (bank, _) = st
            .add_participant(store::NewParticipant {
                role: store::Role::Institution,
                name: "Bank".into(),
                prefixes: vec![],
                reporting_since: None,
            })
            .await?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let t = Instant::now();
        let mut logged = 0;
        while logged < checks {
            let n = CALL.min(checks - logged);
            let items: Vec<(PhoneNumber, Day)> = (0..n)
                .map(|_| {
                    let number =
                        PhoneNumber::from_digits(8_613_000_000_000 + rng.below(1_000_000_000)).expect("a number");
                    (number, day("2024-01-01"))
                })
                .collect();
            st.check(bank.clone(), items).await?;
            logged += n;
        }
        let log_secs = t.elapsed().as_secs_f64();
        let compact = steps("compact", || st.compact_lookups_step(store::COMPACT_STEP)).await?;
        clock.set(domain::Clock::now(clock.as_ref()) + jiff::SignedDuration::from_hours(24 * 181));
        let before = (domain::Clock::now(clock.as_ref()) - jiff::SignedDuration::from_hours(24 * 180)).to_string();
        let step = workers::UpkeepConfig::default().step_check_entries_max;
        // The peer, on a copy of the database as it is now: the same log dropped in one transaction,
        // as a writer that does it at once would be held. The store is idle: once its log is checkpointed
        // whole, the main file alone is the database (a store's connections close on threads of their
        // own, so dropping it would not say when).
        let busy: i64 =
            rusqlite::Connection::open(&db)?.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            bail!("the database could not be checkpointed for the peer's copy");
        }
        let copy = dir.join("numlink-bench-retention-peer.db");
        std::fs::copy(&db, &copy)?;
        let t = Instant::now();
        let c = rusqlite::Connection::open(&copy)?;
        // With a WHERE clause, as a deletion by date has one (SQLite would otherwise drop the pages whole).
        c.execute_batch(
            "BEGIN; DELETE FROM check_tags WHERE day > 0; DELETE FROM check_batches WHERE seq > 0; COMMIT;",
        )?;
        drop(c);
        let peer_secs = t.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&copy);
        let prune = steps("prune", || st.prune_check_log(before.clone(), step)).await?;
        let report = st.verify_audit().await?;
        if report.first_broken.is_some() || report.pruned_check_batches != checks.div_ceil(CALL) {
            bail!("after the pruning the audit chain says {report:?}");
        }
        let mut out = json!({
            "checks": checks,
            "log_secs": log_secs,
            "compact_step_entries": store::COMPACT_STEP,
            "prune_step_entries": step,
            "peer_delete_at_once_secs": peer_secs,
        });
        let fields = out.as_object_mut().expect("an object");
        fields.extend(compact);
        fields.extend(prune);
        anyhow::Ok(out)
    })?;
    println!("{out}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}

fn lifecycle(events: u64, dir: &std::path::Path) -> Result<()> {
    let work = dir.join(format!("bench-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let csv = work.join("events.csv");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rows: Vec<(String, u64, i16, i32)> = Vec::with_capacity(events as usize);
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(f, "event_id,phone_number,type,date")?;
        for i in 0..events {
            let number = 86 * 100_000_000_000 + 1_380_000 * 10_000 + i;
            let (kind, code) = match rng.below(10) {
                0..=4 => ("activated", 5),
                5..=8 => ("disconnected", 3),
                _ => ("transferred", 4),
            };
            let date = day("2026-10-01").plus_days(rng.below(31) as i32);
            writeln!(f, "e{i},+{number},{kind},{date}")?;
            rows.push((format!("e{i}"), number, code, date.packed()));
        }
        f.flush()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let db = work.join("numlink.db");
    let st = store::Store::open(store::StoreConfig::new(
        store::DbUrl::Sqlite(db),
        store::HashKey::generate(),
        Arc::new(FixedClock::at_day(day("2026-11-29"))),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = workers::FileLimits::default();
    let secs = rt.block_on(async {
        let carrier = st
            .add_participant(store::NewParticipant {
                role: store::Role::Carrier,
                name: "Bench Carrier".into(),
                prefixes: vec![Prefix::parse("+861").expect("a prefix")],
                reporting_since: Some(day("2019-06-01")),
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .0;
        let t = Instant::now();
        let job = st
            .create_job(carrier, store::JobKind::Lifecycle, "events".into(), &csv)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let runner = workers::JobRunner::new(st.clone(), limits);
        runner.run_until_idle().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = t.elapsed().as_secs_f64();
        let done = st.job(&job.id, job.owner_seq).await.map_err(|e| anyhow::anyhow!("{e}"))?.context("the job")?;
        if done.accepted != events {
            bail!("{} of {events} events accepted: {done:?}", done.accepted);
        }
        Ok::<_, anyhow::Error>(secs)
    })?;
    drop(st);

    // Peer: the same rows into a table of the same shape, in chunks of the same size, durable.
    let peer_secs = rusqlite_peer(&work.join("peer.db"), &rows, limits.chunk_rows, false)?;
    // Second peer, the floor of any registry: each row also indexed by number and its number's summary
    // upserted (what a check and the index build read).
    let floor_secs = rusqlite_peer(&work.join("floor.db"), &rows, limits.chunk_rows, true)?;
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "{}",
        json!({
            "events": events,
            "events_per_s": events as f64 / secs,
            "secs": secs,
            "peer_rusqlite_rows_per_s": events as f64 / peer_secs,
            "floor_rusqlite_rows_per_s": events as f64 / floor_secs,
        })
    );
    Ok(())
}

/// A month's disconnections as carriers send them: `events` distinct numbers drawn at random from
/// the 100,000,000 of +86138, each disconnected once. The same rows are applied as a job, each time
/// into a fresh registry: sorted by number (the peer) and in their random order, with event ids that
/// follow the numbers; in random order with event ids in the file's order (`e1`, `e2`, …, so that in
/// number order the ids are random); and, given `pg` (a server's admin URL), the random order on
/// PostgreSQL. Meanwhile a bank checks a number every 20 ms, and the time each audited check takes is
/// kept: what applying a file costs online.
fn lifecycle_order(events: u64, dir: &std::path::Path, pg: Option<&str>) -> Result<()> {
    let work = dir.join(format!("bench-lifecycle-order-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let mut numbers = std::collections::HashSet::with_capacity(events as usize);
    let mut random = Vec::with_capacity(events as usize);
    while (random.len() as u64) < events {
        let n = 86 * 100_000_000_000 + 138 * 100_000_000 + rng.below(100_000_000);
        if numbers.insert(n) {
            random.push(n);
        }
    }
    drop(numbers);
    let mut sorted = random.clone();
    sorted.sort_unstable();
    let write = |path: &std::path::Path, order: &[u64], ids_in_file_order: bool| -> Result<()> {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "event_id,phone_number,type,date")?;
        for (i, n) in order.iter().enumerate() {
            if ids_in_file_order {
                writeln!(f, "e{i},+{n},disconnected,2026-11-02")?;
            } else {
                writeln!(f, "d{n},+{n},disconnected,2026-11-02")?;
            }
        }
        f.flush()?;
        Ok(())
    };
    let mut out = serde_json::Map::new();
    out.insert("events".into(), json!(events));
    out.insert("chunks_in_flight".into(), json!(workers::FileLimits::default().chunks_in_flight));
    let mut runs = vec![("sorted", &sorted, false, false), ("random", &random, false, false)];
    runs.push(("random_ids", &random, true, false));
    if pg.is_some() {
        runs.push(("random_pg", &random, false, true));
    }
    for (name, order, ids_in_file_order, on_pg) in runs {
        let run = work.join(name);
        std::fs::create_dir_all(&run)?;
        let csv = run.join("events.csv");
        write(&csv, order, ids_in_file_order)?;
        let (url, database) = match pg.filter(|_| on_pg) {
            Some(admin) => {
                let database = format!("bench_{name}_{}", std::process::id());
                postgres::Client::connect(admin, postgres::NoTls)?
                    .batch_execute(&format!("CREATE DATABASE {database}"))?;
                let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
                (store::DbUrl::Postgres(format!("{base}/{database}")), Some(database))
            }
            None => (store::DbUrl::Sqlite(run.join("numlink.db")), None),
        };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let st = store::Store::open(store::StoreConfig::new(
            url,
            store::HashKey::generate(),
            Arc::new(FixedClock::at_day(day("2026-11-29"))),
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (took, mut waits) = rt.block_on(async {
            let participant = |role, name: &str, prefixes: Vec<Prefix>| store::NewParticipant {
                role,
                name: name.into(),
                prefixes,
                reporting_since: (role == store::Role::Carrier).then(|| day("2019-06-01")),
            };
            let add = |p| st.add_participant(p);
            let carrier = add(participant(store::Role::Carrier, "Bench Carrier", vec![Prefix::parse("+86138")?]))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .0;
            let bank = add(participant(store::Role::Institution, "Bench Bank", vec![]))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .0;
            // The bank's checks while the file is applied, one every 20 ms, each timed.
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
            let checker = {
                let (st, sample) = (st.clone(), random[..1000.min(random.len())].to_vec());
                tokio::spawn(async move {
                    let mut waits = Vec::new();
                    let mut i = 0;
                    while !*stop_rx.borrow() {
                        let n = PhoneNumber::from_digits(sample[i % sample.len()]).expect("a number");
                        let t = Instant::now();
                        st.check(bank.clone(), vec![(n, day("2026-01-01"))]).await.expect("a check");
                        waits.push(t.elapsed().as_secs_f64());
                        i += 1;
                        tokio::select! {
                            () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                            _ = stop_rx.changed() => {}
                        }
                    }
                    waits
                })
            };
            let t = Instant::now();
            let job = st
                .create_job(carrier, store::JobKind::Lifecycle, "events".into(), &csv)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let runner = workers::JobRunner::new(st.clone(), workers::FileLimits::default());
            runner.run_until_idle().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let took = t.elapsed().as_secs_f64();
            let _ = stop_tx.send(true);
            let waits = checker.await?;
            let done = st.job(&job.id, job.owner_seq).await.map_err(|e| anyhow::anyhow!("{e}"))?.context("the job")?;
            if done.accepted != events {
                bail!("{name}: {} of {events} events accepted: {done:?}", done.accepted);
            }
            Ok::<_, anyhow::Error>((took, waits))
        })?;
        drop(st);
        drop(rt);
        if let (Some(admin), Some(database)) = (pg, database) {
            postgres::Client::connect(admin, postgres::NoTls)?.batch_execute(&format!("DROP DATABASE {database}"))?;
        }
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits.get(((waits.len() as f64 * q) as usize).min(waits.len().saturating_sub(1))).copied();
        eprintln!("{name}: {events} events in {took:.2} s; {} checks meanwhile", waits.len());
        out.insert(format!("{name}_secs"), json!(took));
        out.insert(format!("{name}_events_per_s"), json!(events as f64 / took));
        out.insert(format!("{name}_check_ms_p50"), json!(at(0.5).map(|s| s * 1e3)));
        out.insert(format!("{name}_check_ms_p99"), json!(at(0.99).map(|s| s * 1e3)));
        out.insert(format!("{name}_check_ms_max"), json!(waits.last().map(|s| s * 1e3)));
        std::fs::remove_dir_all(&run)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    let secs = |k: &str| out.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let ratios = [
        ("random_over_sorted_time", secs("random_secs") / secs("sorted_secs")),
        ("random_ids_over_sorted_time", secs("random_ids_secs") / secs("sorted_secs")),
        ("pg_over_sqlite_time", secs("random_pg_secs") / secs("random_secs")),
    ];
    for (k, v) in ratios.into_iter().filter(|(_, v)| v.is_finite()) {
        out.insert(k.into(), json!(v));
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// The lifecycle bench's rusqlite peers: `rows` (event id, number, type code, date) inserted into an
/// `events` table of numlink's shape in `chunk`-row transactions, WAL, `synchronous=FULL`; with
/// `floor`, each row also indexed by number and its number's summary upserted. Seconds taken.
fn rusqlite_peer(path: &std::path::Path, rows: &[(String, u64, i16, i32)], chunk: usize, floor: bool) -> Result<f64> {
    let mut c = rusqlite::Connection::open(path)?;
    // numlink's settings: its page size, WAL, every commit durable.
    c.pragma_update(None, "page_size", store::SQLITE_PAGE_SIZE)?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE events (carrier_seq INTEGER NOT NULL, event_id TEXT NOT NULL, number INTEGER NOT NULL,
           kind INTEGER NOT NULL, day INTEGER NOT NULL, kyc_hash BLOB, PRIMARY KEY (carrier_seq, event_id)) WITHOUT ROWID;",
    )?;
    if floor {
        c.execute_batch(
            "CREATE INDEX events_number ON events (number, day, kind);
             CREATE TABLE numbers (number INTEGER PRIMARY KEY, first_event INTEGER, last_end INTEGER,
               last_activation INTEGER, disconnected INTEGER NOT NULL, serving INTEGER);",
        )?;
    }
    let t = Instant::now();
    for chunk in rows.chunks(chunk) {
        let tx = c.transaction()?;
        {
            let mut ev = tx.prepare_cached(
                "INSERT INTO events (carrier_seq, event_id, number, kind, day, kyc_hash) VALUES (1, ?1, ?2, ?3, ?4, NULL)",
            )?;
            let mut summary = if floor {
                Some(tx.prepare_cached(
                    "INSERT INTO numbers (number, first_event, last_end, last_activation, disconnected, serving) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT (number) DO UPDATE SET first_event = excluded.first_event, \
                     last_end = excluded.last_end, last_activation = excluded.last_activation, \
                     disconnected = excluded.disconnected, serving = excluded.serving",
                )?)
            } else {
                None
            };
            for (id, number, kind, date) in chunk {
                ev.execute(rusqlite::params![id, *number as i64, kind, date])?;
                if let Some(summary) = summary.as_mut() {
                    let ends = *kind != 5;
                    summary.execute(rusqlite::params![
                        *number as i64,
                        date,
                        ends.then_some(*date),
                        (!ends).then_some(*date),
                        i64::from(*kind == 3)
                    ])?;
                }
            }
        }
        tx.commit()?;
    }
    Ok(t.elapsed().as_secs_f64())
}
