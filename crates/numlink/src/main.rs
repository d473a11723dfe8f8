//! The `numlink` binary: command line, configuration, and wiring of store, workers and API. It holds
//! no business rules.

mod config;
mod receiver;
mod upload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use domain::{Day, Prefix, SystemClock};
use serde_json::json;
use store::{NewParticipant, Role, Store, StoreConfig};

use crate::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(name = "numlink", version, about = "The clearinghouse for recycled phone numbers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; shared by the commands that open the database.
#[derive(clap::Args, Debug, Clone)]
struct DbArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "NUMLINK_DB")]
    db: Option<String>,
    /// A configuration file (default: ./numlink.toml if present).
    #[arg(long, env = "NUMLINK_CONFIG")]
    config: Option<PathBuf>,
    /// The number hash key, 64 hex digits (default for SQLite: a key file beside the database).
    #[arg(long, env = "NUMLINK_HASH_KEY", hide_env_values = true)]
    hash_key: Option<String>,
    /// A file holding the number hash key.
    #[arg(long, env = "NUMLINK_HASH_KEY_FILE")]
    hash_key_file: Option<PathBuf>,
}

impl DbArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            db: self.db.clone(),
            config: self.config.clone(),
            hash_key: self.hash_key.clone(),
            hash_key_file: self.hash_key_file.clone(),
            ..Overrides::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// IP:PORT to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "NUMLINK_LISTEN")]
        listen: Option<String>,
        /// Where uploaded files wait to be applied (default: beside the SQLite file).
        #[arg(long, env = "NUMLINK_SPOOL_DIR")]
        spool_dir: Option<PathBuf>,
        /// Allow webhook endpoints and SMS gateways on loopback (http://127.0.0.1…): for local
        /// development and tests only.
        #[arg(long)]
        allow_loopback_webhooks: bool,
        /// Append one-time codes to this file as JSON lines {"phoneNumber", "text"} instead of sending
        /// them to carriers' SMS gateways: for local use only.
        #[arg(long, env = "NUMLINK_SMS_OUTBOX")]
        sms_outbox: Option<PathBuf>,
        /// The address people reach numlink at, e.g. `https://numlink.example.cn`: the link a proof's QR
        /// code holds; when it is https, the portal's cookies are marked Secure.
        #[arg(long, env = "NUMLINK_PUBLIC_URL")]
        public_url: Option<String>,
        /// This node's name among the nodes on one PostgreSQL (default: host:port): what its claims on
        /// jobs and deliveries are held under. Keep it across restarts, and unique.
        #[arg(long, env = "NUMLINK_NODE_NAME")]
        node_name: Option<String>,
    },
    /// Manage participants: carriers, institutions, regulators.
    Participant {
        #[command(subcommand)]
        command: ParticipantCommand,
    },
    /// Upload a lifecycle file (carriers) or a binding file (institutions), wait for it to be
    /// applied, and print the summary.
    Upload {
        /// The CSV file.
        file: PathBuf,
        /// What the file holds.
        #[arg(long, value_parser = ["lifecycle", "bindings"], default_value = "lifecycle")]
        kind: String,
        /// The server's base URL.
        #[arg(long, env = "NUMLINK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// A carrier's API key.
        #[arg(long, env = "NUMLINK_KEY", hide_env_values = true)]
        key: String,
    },
    /// Check a file of numbers (`phone_number,date`): upload it, wait for the answers, and write them to
    /// RESULT as `phone_number,date,answer` in input order.
    CheckFile {
        /// The CSV file.
        file: PathBuf,
        /// The server's base URL.
        #[arg(long, env = "NUMLINK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An institution's API key.
        #[arg(long, env = "NUMLINK_KEY", hide_env_values = true)]
        key: String,
        /// Where to write the answers.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Listen for webhook deliveries and print each as a JSON line, checking its signature when the
    /// endpoint's secret is given: a development aid for trying webhooks locally.
    WebhookReceiver {
        /// IP:PORT to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
        /// The endpoint's `whsec_…` secret, to verify signatures.
        #[arg(long, env = "NUMLINK_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the in-memory index a server builds at start.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Proofs of tenure: verify one offline, or rotate the signing key.
    Attestation {
        #[command(subcommand)]
        command: AttestationCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AttestationCommand {
    /// Verify a proof of tenure against the published keys and print its claims; exits non-zero if it
    /// does not verify or has expired.
    Verify {
        /// The compact JWS.
        token: String,
        /// Where the keys are: a URL (…/.well-known/jwks.json) or a file saved from it (offline).
        #[arg(long, default_value = "http://127.0.0.1:8080/.well-known/jwks.json")]
        jwks: String,
        /// Refuse a token from any other issuer (the `iss` claim, "numlink" by default on a server).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Start signing with a new key; the previous one stays published until its tokens expire.
    RotateKey {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
enum ParticipantCommand {
    /// Add a participant; prints {"id", "apiKey"} once: the key is stored only as a hash.
    Add {
        #[command(flatten)]
        db: DbArgs,
        /// `portability` is the national number-portability database, which reports whole ports.
        #[arg(long, value_parser = ["carrier", "institution", "regulator", "portability"])]
        role: String,
        #[arg(long)]
        name: String,
        /// A number range of a carrier, as an E.164 prefix (repeatable), e.g. +86138.
        #[arg(long = "prefix")]
        prefixes: Vec<String>,
        /// The first day a carrier reports for (YYYY-MM-DD).
        #[arg(long)]
        reporting_since: Option<String>,
    },
    /// List participants as JSON lines.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Issue a new API key and revoke the participant's earlier keys; prints {"id", "apiKey"}.
    RotateKey {
        #[command(flatten)]
        db: DbArgs,
        id: String,
    },
    /// Revoke every API key of a participant.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the audit log's hash chain; exits non-zero if it is broken.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
enum IndexCommand {
    /// Build the index as a server starts (from its snapshot and the changes since, when the snapshot
    /// is usable) and again by reading every number, and compare the two; exits non-zero if they
    /// differ. Run it while no events are being written, or it says it could not compare.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
}

fn init_logging(format: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("NUMLINK_LOG").unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let json = match format {
        Some("json") => true,
        Some("pretty") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// The store for a short-lived command: no index (it answers no checks, and building one would read
/// every number).
/// A participant id as given on the command line.
fn participant_id(id: &str) -> Result<store::ParticipantId> {
    store::ParticipantId::parse(id).ok_or_else(|| anyhow!("no participant with id \"{id}\""))
}

fn open_store(config: &Config) -> Result<Store> {
    open_store_with(config, false)
}

fn open_store_with(config: &Config, build_index: bool) -> Result<Store> {
    let mut sc = StoreConfig::new(config.db.clone(), config.hash_key.clone(), Arc::new(SystemClock));
    sc.aging = config.aging.clone();
    sc.build_index = build_index;
    sc.index_snapshot = build_index.then(|| config.index_snapshot.clone());
    sc.write_queue_commands_max = config.limits.write_queue_commands_max;
    sc.write_batch_commands_max = config.limits.write_batch_commands_max;
    sc.pending_ports_per_carrier_max = config.limits.pending_ports_per_carrier_max;
    sc.notifications_waiting_max = config.limits.notifications_waiting_max;
    // A server is the node on this host that listens on its port: restarted, it is the same node, and
    // takes back at once the jobs it was running. (On a port the system picks, a name of its own.)
    sc.node = match &config.node_name {
        Some(name) => Some(name.clone()),
        None => Some(config.listen.port()).filter(|&p| p != 0).map(node_name),
    }
    .filter(|_| build_index);
    Store::open(sc).map_err(|e| anyhow!("{e}"))
}

/// `host:port`: the host's name (or `numlink` where it has none to read) and the port served.
fn node_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "numlink".to_string());
    format!("{host}:{port}")
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // HTTP clients (uploads, webhooks) use rustls with ring's crypto.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve { db, listen, spool_dir, allow_loopback_webhooks, sms_outbox, public_url, node_name } => {
            let mut o = db.overrides();
            o.node_name = node_name;
            o.listen = listen;
            o.spool_dir = spool_dir;
            o.allow_loopback_webhooks = allow_loopback_webhooks;
            o.sms_outbox = sms_outbox;
            o.public_url = public_url;
            serve(&o).await?;
        }
        Command::Participant { command } => participant(command).await?,
        Command::Upload { file, kind, server, key } => return upload::run(&file, &kind, &server, &key).await,
        Command::CheckFile { file, server, key, output } => {
            return upload::check_file(&file, &server, &key, &output).await;
        }
        Command::WebhookReceiver { listen, secret } => receiver::run(&listen, secret).await?,
        Command::Audit { command: AuditCommand::Verify { db } } => {
            let config = Config::load(&db.overrides())?;
            let store = open_store(&config)?;
            let report = store.verify_audit().await?;
            println!(
                "{}",
                json!({"records": report.records, "firstBroken": report.first_broken, "prunedCheckBatches": report.pruned_check_batches})
            );
            if report.first_broken.is_some() {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Index { command: IndexCommand::Verify { db } } => {
            let config = Config::load(&db.overrides())?;
            // Events written between the two builds would make them differ: compare builds that reflect
            // the same change, a few tries at most.
            for _ in 0..3 {
                let mut sc = StoreConfig::new(config.db.clone(), config.hash_key.clone(), Arc::new(SystemClock));
                sc.aging = config.aging.clone();
                sc.build_index = true;
                sc.index_snapshot = Some(config.index_snapshot.clone());
                let started = Store::open(sc.clone()).map_err(|e| anyhow!("{e}"))?;
                sc.index_snapshot = None;
                let scanned = Store::open(sc).map_err(|e| anyhow!("{e}"))?;
                if started.index_change_seq() != scanned.index_change_seq() {
                    continue;
                }
                let equal = started.index_digest() == scanned.index_digest();
                let origin = match started.index_origin() {
                    store::IndexOrigin::Snapshot { seq, caught_up } => {
                        json!({"from": "snapshot", "snapshotSeq": seq, "caughtUp": caught_up})
                    }
                    store::IndexOrigin::Scan { why } => json!({"from": "scan", "why": why}),
                };
                println!(
                    "{}",
                    json!({"equal": equal, "changeSeq": started.index_change_seq(), "start": origin, "digest": started.index_digest().iter().map(|b| format!("{b:02x}")).collect::<String>()})
                );
                return Ok(if equal { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE });
            }
            bail!("events were being written all along: the two builds never reflected the same change");
        }
        Command::Attestation { command: AttestationCommand::Verify { token, jwks, issuer } } => {
            return attestation_verify(&token, &jwks, issuer.as_deref()).await;
        }
        Command::Attestation { command: AttestationCommand::RotateKey { db } } => {
            let config = Config::load(&db.overrides())?;
            let store = open_store(&config)?;
            let attester = api::attest::Attester::new(
                config.hash_key.clone(),
                config.holder.issuer.clone(),
                config.holder.attestation_ttl_secs,
            );
            let kid = attester.rotate(&store).await?;
            println!("{}", json!({"kid": kid}));
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Verifies a proof of tenure against a JWK Set from a URL or a file, offline in the file case.
async fn attestation_verify(token: &str, jwks: &str, issuer: Option<&str>) -> Result<std::process::ExitCode> {
    let text = if jwks.starts_with("http://") || jwks.starts_with("https://") {
        let resp = reqwest::get(jwks).await.with_context(|| format!("fetching {jwks}"))?;
        if !resp.status().is_success() {
            bail!("fetching {jwks}: {}", resp.status());
        }
        resp.text().await.with_context(|| format!("reading {jwks}"))?
    } else {
        std::fs::read_to_string(jwks).with_context(|| format!("reading {jwks}"))?
    };
    let set: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{jwks} is not a JWK Set"))?;
    let now = jiff::Timestamp::now().as_second();
    match api::attest::verify(token, &set, now, issuer) {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(&claims)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: the proof of tenure does not verify: {e}");
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

async fn participant(command: ParticipantCommand) -> Result<()> {
    match command {
        ParticipantCommand::Add { db, role, name, prefixes, reporting_since } => {
            let config = Config::load(&db.overrides())?;
            let role = Role::parse(&role).context("role")?;
            let prefixes = prefixes
                .iter()
                .map(|p| Prefix::parse(p).map_err(|e| anyhow!("--prefix: {e}")))
                .collect::<Result<Vec<_>>>()?;
            let reporting_since =
                reporting_since.map(|d| Day::parse(&d).map_err(|e| anyhow!("--reporting-since: {e}"))).transpose()?;
            let store = open_store(&config)?;
            let (p, key) = store
                .add_participant(NewParticipant { role, name, prefixes, reporting_since })
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("{}", json!({"id": p.id.as_str(), "apiKey": key.expose()}));
        }
        ParticipantCommand::List { db } => {
            let store = open_store(&Config::load(&db.overrides())?)?;
            for p in store.list_participants().await? {
                let mut line =
                    json!({"id": p.id.as_str(), "role": p.role.as_str(), "name": p.name, "createdAt": p.created_at});
                if p.role == Role::Carrier {
                    line["prefixes"] = json!(p.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>());
                    line["reportingSince"] = json!(p.reporting_since.map(|d| d.to_string()));
                }
                println!("{line}");
            }
        }
        ParticipantCommand::RotateKey { db, id } => {
            let store = open_store(&Config::load(&db.overrides())?)?;
            let key = store.rotate_key(&participant_id(&id)?).await.map_err(|e| anyhow!("{e}"))?;
            println!("{}", json!({"id": id, "apiKey": key.expose()}));
        }
        ParticipantCommand::Revoke { db, id } => {
            let store = open_store(&Config::load(&db.overrides())?)?;
            let n = store.revoke_keys(&participant_id(&id)?).await.map_err(|e| anyhow!("{e}"))?;
            println!("{}", json!({"id": id, "revokedKeys": n}));
        }
    }
    Ok(())
}

async fn serve(o: &Overrides) -> Result<()> {
    let config = Config::load(o)?;
    init_logging(config.log_format.as_deref());
    tracing::info!(config = ?config, "starting numlink");
    if config.holder.public_url.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "public_url is not set: the portal's cookies are not marked Secure and a proof's QR code links to the \
             Host a request names; behind an https proxy, set public_url (numlink.toml, NUMLINK_PUBLIC_URL or \
             --public-url)"
        );
    }
    let store = open_store_with(&config, true)?;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    // The recorder keeps every histogram sample until it is drained: by a scrape of /metrics, or by
    // this upkeep. Without it a server nobody scrapes grew by ~1 MB a second under the CAMARA load.
    let upkeep = recorder.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let runner = workers::JobRunner::new(store.clone(), config.limits.files).with_spool_dir(config.spool_dir.clone());
    if config.webhooks.allow_loopback {
        tracing::warn!(
            "WEBHOOKS TO LOOPBACK ARE ALLOWED (--allow-loopback-webhooks): for local development and tests only, never in production"
        );
    }
    let deliverer = workers::Deliverer::new(store.clone(), config.webhooks)?;
    let sink = match &config.sms_outbox {
        Some(path) => {
            tracing::warn!(path = %path.display(), "ONE-TIME CODES GO TO A FILE (--sms-outbox), NOT TO CARRIERS: for local use only");
            workers::SmsSink::File(path.clone())
        }
        None => workers::SmsSink::Gateways(config.webhooks),
    };
    let (sms_queue, sms_sender) = workers::SmsSender::new(store.clone(), sink, config.limits.sms_queue_messages_max)?;
    let holder = api::HolderState::new(config.holder.clone(), config.hash_key.clone(), sms_queue);
    let kid = holder.attester.ensure_key(&store).await?;
    tracing::info!(kid, "proofs of tenure are signed with this key");
    let state = api::AppState::new(api::StateParts {
        store: store.clone(),
        limits: config.limits,
        spool_dir: config.spool_dir.clone(),
        jobs_wake: runner.waker(),
        deliveries_wake: deliverer.waker(),
        webhooks: config.webhooks,
        metrics: Some(Arc::new(move || recorder.render())),
        holder: Arc::new(holder),
        stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        job_progress: runner.progress(),
        following: Arc::default(),
        sign_in_failures: api::limit::ClientLimiter::new(
            "console-sign-in-failure",
            config.limits.console_sign_in_failures_per_client_per_hour_max,
            3600,
        ),
        admission: api::admit::Admission::new(config.limits.rates, config.trusted_proxies.clone()),
    });
    let stopping = state.stopping.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // This node's name, held for as long as it runs: a second process under the same name (which
    // would share its claims on jobs and deliveries) is told in the log, loudly, until one stops.
    let name_store = store.clone();
    tokio::spawn(async move {
        let boot = store::new_id("boot");
        let mut every = tokio::time::interval(std::time::Duration::from_secs(store::NODE_NAME_LEASE_SECS as u64 / 3));
        let mut others_until = None;
        loop {
            every.tick().await;
            match name_store.announce_node(boot.clone()).await {
                Ok(None) => others_until = None,
                // The same hold, not renewed: the process this one replaces, until its hold runs out.
                Ok(Some(until)) if others_until.is_none_or(|seen| seen == until) => others_until = Some(until),
                Ok(Some(until)) => {
                    others_until = Some(until);
                    tracing::error!(
                        node = name_store.node(),
                        "another process is running as this node: give each node its own node_name"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "announcing this node failed"),
            }
        }
    });
    // The SMS sender: sends one-time codes from the outbox, this node's and any other's, until
    // shutdown (what it has not sent waits in the outbox for the next node).
    let mut sms_stop = stop_rx.clone();
    let sms_task = tokio::spawn(Arc::new(sms_sender).run(async move {
        let _ = sms_stop.wait_for(|s| *s).await;
    }));
    let mut runner_stop = stop_rx.clone();
    // The job runner: applies uploaded files in the background until shutdown.
    let runner_task = tokio::spawn(runner.run(async move {
        let _ = runner_stop.wait_for(|s| *s).await;
    }));
    // Upkeep: drops what has outlived its time, a bounded step at a time, until shutdown.
    let mut upkeep_stop = stop_rx.clone();
    let upkeep = workers::Upkeep::new(store.clone(), config.upkeep);
    let upkeep_task = tokio::spawn(upkeep.run(async move {
        let _ = upkeep_stop.wait_for(|s| *s).await;
    }));
    // The webhook deliverer: sends due deliveries until shutdown.
    let mut deliverer_stop = stop_rx.clone();
    let deliverer_task = tokio::spawn(deliverer.run(async move {
        let _ = deliverer_stop.wait_for(|s| *s).await;
    }));
    // The index's snapshot: every index_snapshot_secs while the index changes, so that a restart
    // reads it (and the changes since) instead of every number.
    let mut snapshot_stop = stop_rx.clone();
    let snapshot_store = store.clone();
    let every = config.index_snapshot_secs;
    let snapshot_task = tokio::spawn(async move {
        if every == 0 {
            return;
        }
        loop {
            tokio::select! {
                _ = snapshot_stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(every)) => {}
            }
            if let Err(e) = snapshot_store.write_index_snapshot().await {
                tracing::error!(error = %e, "writing the index snapshot failed; a start reads the changes since the last");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(listen = %bound, "numlink is listening");
    // With its connection limits, no more connections than the process may open files (less what the
    // database, the spool and the logs need); client addresses reach the handlers (the per-client
    // limits).
    let mut serve_limits = config.serve;
    let trusted = config.trusted_proxies.clone();
    if let Some(files) = open_files_max() {
        let room = u32::try_from(files.saturating_sub(OPEN_FILES_KEPT)).unwrap_or(u32::MAX).max(16);
        if room < serve_limits.connections_max {
            tracing::warn!(
                open_files_max = files,
                connections_max = room,
                "the process may open few files: connections are capped below connections_max"
            );
            serve_limits.connections_max = room;
        }
    }
    api::serve::serve(listener, api::router(state), serve_limits, trusted, async move {
        shutdown_signal().await;
        // Followed results end now; the runner goes on until the last request has ended.
        stopping.send_replace(true);
    })
    .await
    .context("serving HTTP")?;
    let _ = stop_tx.send(true);
    let _ = runner_task.await;
    let _ = deliverer_task.await;
    let _ = sms_task.await;
    let _ = upkeep_task.await;
    let _ = snapshot_task.await;
    // The last snapshot, once nothing writes any more: the next start catches up nothing.
    if config.index_snapshot_secs > 0
        && let Err(e) = store.write_index_snapshot().await
    {
        tracing::error!(error = %e, "writing the index snapshot at shutdown failed");
    }
    tracing::info!("numlink stopped");
    Ok(())
}

/// Files kept for the database, the spool, the logs and outgoing calls, out of the process's limit.
const OPEN_FILES_KEPT: u64 = 128;

/// The process's soft limit on open files (Linux: `/proc/self/limits`), if it can be read.
fn open_files_max() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
