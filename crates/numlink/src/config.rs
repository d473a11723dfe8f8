//! One typed configuration, layered: defaults → `numlink.toml` → `NUMLINK_*` environment → flags.
//! Secrets are redacted in `Debug`, so the effective configuration can be logged at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use api::{HolderConfig, Limits};
use domain::{AgingPolicy, DaysByCallingCode};
use serde::Deserialize;
use store::{DbUrl, HashKey};
use workers::DeliveryConfig;

pub const DEFAULT_DB: &str = "sqlite://./numlink.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_CONFIG_FILE: &str = "numlink.toml";

/// `numlink.toml`: every key optional; unknown keys are an error, so a typo does not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub db: Option<String>,
    pub listen: Option<String>,
    /// 64 hex digits. Prefer `hash_key_file` or `NUMLINK_HASH_KEY` to keep it out of the file.
    pub hash_key: Option<String>,
    pub hash_key_file: Option<PathBuf>,
    pub spool_dir: Option<PathBuf>,
    /// The index's snapshot, read at start instead of every number when it is usable (default: beside
    /// a SQLite database, `<db>.index`; in the spool directory with PostgreSQL).
    pub index_snapshot: Option<PathBuf>,
    /// Seconds between snapshots of the index while it changes (and one at shutdown); 0: none.
    pub index_snapshot_secs: Option<u64>,
    pub log_format: Option<String>,
    /// This node's name among the nodes on one database (default: host:port).
    pub node_name: Option<String>,
    /// The address people reach numlink at (`https://…`): the link in a proof's QR code; an https
    /// address marks the portal's cookies Secure (numlink behind a TLS proxy).
    pub public_url: Option<String>,
    /// The proxies (addresses or blocks, `"10.0.0.0/8"`) whose `X-Forwarded-For` names the client;
    /// from anyone else the header is ignored. Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub limits: FileLimitsConfig,
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    #[serde(default)]
    pub aging: AgingConfig,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    #[serde(default)]
    pub holder: HolderFileConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `[retention]`: how long what numlink keeps is kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a job's outputs (a check file's answers, the rejected rows) are kept after it ended.
    pub job_outputs_days: Option<u32>,
    /// Days the check log is kept; the holder sees who looked the number up this far back.
    pub lookups_days: Option<u32>,
}

/// `[holder]`: one-time codes, sessions, proofs of tenure, unbind deadlines.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderFileConfig {
    pub otp_ttl_secs: Option<i64>,
    pub otp_attempts_max: Option<u32>,
    pub otp_sends_per_hour_max: Option<u32>,
    pub otp_sends_per_day_max: Option<u32>,
    pub otp_sends_per_number_per_day_max: Option<u32>,
    pub otp_failures_before_lock: Option<u32>,
    pub otp_lock_secs: Option<i64>,
    pub session_secs: Option<i64>,
    pub attestation_ttl_days: Option<u32>,
    pub issuer: Option<String>,
    pub unbind_deadline_working_days: Option<u32>,
    /// Calling code (digits, no `+`) → working days, e.g. `"86" = 5`.
    #[serde(default)]
    pub unbind_deadline_working_days_by_country_code: BTreeMap<String, u32>,
    pub ack_working_days: Option<u32>,
    pub otp_requests_per_client_per_hour_max: Option<u32>,
    /// Seconds before the portal offers another code to the same number.
    pub otp_resend_wait_secs: Option<i64>,
    /// The IANA time zone the pages show times in (e.g. `"Asia/Shanghai"`; default `"UTC"`).
    pub time_zone: Option<String>,
}

/// `[rate_limits]`: requests per second and bursts, per participant by role and per client address
/// (requests without a valid API key). `per_sec = 0` is no limit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub carrier: Option<RateConfig>,
    pub institution: Option<RateConfig>,
    pub regulator: Option<RateConfig>,
    pub portability: Option<RateConfig>,
    pub anonymous_per_client: Option<RateConfig>,
}

/// `{ per_sec = 1000, burst = 2000 }`; either may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_sec: Option<u32>,
    pub burst: Option<u32>,
}

impl RateConfig {
    fn over(&self, default: api::admit::Rate) -> api::admit::Rate {
        api::admit::Rate::new(self.per_sec.unwrap_or(default.per_sec), self.burst.unwrap_or(default.burst).max(1))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub timeout_ms: Option<u64>,
    pub in_flight_max: Option<usize>,
    pub in_flight_per_endpoint_max: Option<usize>,
    pub disable_after_days: Option<u32>,
    pub secret_overlap_hours: Option<u32>,
    pub round_budget_ms: Option<u64>,
    pub endpoint_round_deliveries_max: Option<u32>,
    pub round_endpoints_max: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimitsConfig {
    pub body_bytes_max: Option<usize>,
    pub batch_items_max: Option<usize>,
    pub page_rows_max: Option<u32>,
    pub file_bytes_max: Option<u64>,
    pub file_rows_max: Option<u64>,
    pub csv_field_bytes_max: Option<usize>,
    pub file_chunk_rows: Option<usize>,
    pub webhook_endpoints_max: Option<u32>,
    pub followed_results_max: Option<u32>,
    pub kyc_matches_per_number_per_day_max: Option<u32>,
    pub kyc_attribute_chars_max: Option<usize>,
    pub unbind_institutions_max: Option<usize>,
    pub lookups_listed_max: Option<u32>,
    pub pending_ports_listed_max: Option<u32>,
    pub pending_ports_per_carrier_max: Option<u64>,
    pub write_queue_commands_max: Option<usize>,
    pub write_batch_commands_max: Option<usize>,
    pub notifications_waiting_max: Option<u64>,
    pub sms_queue_messages_max: Option<usize>,
    pub form_bytes_max: Option<usize>,
    pub console_idle_secs: Option<i64>,
    pub console_sign_in_failures_per_client_per_hour_max: Option<u32>,
    pub file_check_chunk_rows: Option<usize>,
    pub file_chunks_in_flight: Option<usize>,
    pub file_sort_bytes: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub json_body_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub body_bytes_per_sec_min: Option<u64>,
    pub connections_per_client_max: Option<u32>,
    pub connections_max: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgingConfig {
    pub default_days: Option<u32>,
    /// Calling code (digits, no `+`) → days, e.g. `"44" = 30`.
    #[serde(default)]
    pub days_by_country_code: BTreeMap<String, u32>,
}

/// What the flags and environment give (already merged by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub db: Option<String>,
    pub listen: Option<String>,
    pub config: Option<PathBuf>,
    pub hash_key: Option<String>,
    pub hash_key_file: Option<PathBuf>,
    pub spool_dir: Option<PathBuf>,
    pub allow_loopback_webhooks: bool,
    pub sms_outbox: Option<PathBuf>,
    pub public_url: Option<String>,
    pub node_name: Option<String>,
}

pub struct Config {
    pub db: DbUrl,
    pub listen: SocketAddr,
    pub hash_key: HashKey,
    pub hash_key_source: String,
    pub spool_dir: PathBuf,
    /// Where the index's snapshot is kept, and how often it is written (0: never).
    pub index_snapshot: PathBuf,
    pub index_snapshot_secs: u64,
    pub log_format: Option<String>,
    pub limits: Limits,
    /// Connection limits of the HTTP server.
    pub serve: api::serve::ServeLimits,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: api::admit::TrustedProxies,
    pub aging: AgingPolicy,
    pub webhooks: DeliveryConfig,
    pub holder: HolderConfig,
    /// The upkeep's retention periods and pace.
    pub upkeep: workers::UpkeepConfig,
    /// Codes go to this file as JSON lines instead of to carriers' gateways (local use).
    pub sms_outbox: Option<PathBuf>,
    /// This node's name among the nodes on one database (`None`: host:port).
    pub node_name: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db", &self.db)
            .field("listen", &self.listen)
            .field("hash_key", &format_args!("<redacted, from {}>", self.hash_key_source))
            .field("spool_dir", &self.spool_dir)
            .field("limits", &self.limits)
            .field("serve", &self.serve)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("aging", &self.aging)
            .field("webhooks", &self.webhooks)
            .field("holder", &self.holder)
            .field("upkeep", &self.upkeep)
            .field("sms_outbox", &self.sms_outbox)
            .field("node_name", &self.node_name)
            .finish()
    }
}

fn read_file_config(o: &Overrides) -> Result<FileConfig> {
    let (path, required) = match &o.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

impl Config {
    pub fn load(o: &Overrides) -> Result<Config> {
        let file = read_file_config(o)?;
        let db_text = o.db.clone().or(file.db).unwrap_or_else(|| DEFAULT_DB.to_string());
        let db = DbUrl::parse(&db_text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let listen_text = o.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr =
            listen_text.parse().with_context(|| format!("listen address {listen_text:?} is not IP:PORT"))?;

        let key_hex = o.hash_key.clone().or(file.hash_key);
        let key_file = o.hash_key_file.clone().or(file.hash_key_file);
        let (hash_key, hash_key_source) = match (key_hex, key_file, &db) {
            (Some(hex), _, _) => {
                (HashKey::from_hex(&hex).map_err(|e| anyhow::anyhow!("hash key: {e}"))?, "configuration".to_string())
            }
            (None, Some(path), _) => (load_key(&path)?, path.display().to_string()),
            (None, None, DbUrl::Sqlite(db_path)) => {
                let path = sibling(db_path, "key");
                (load_key(&path)?, path.display().to_string())
            }
            (None, None, DbUrl::Postgres(_)) => bail!(
                "a PostgreSQL database needs the number hash key from configuration: set NUMLINK_HASH_KEY (64 hex digits) or hash_key_file"
            ),
        };

        let spool_dir = o.spool_dir.clone().or(file.spool_dir).unwrap_or_else(|| match &db {
            DbUrl::Sqlite(p) => sibling(p, "spool"),
            DbUrl::Postgres(_) => PathBuf::from("./numlink-spool"),
        });

        let index_snapshot = file.index_snapshot.clone().unwrap_or_else(|| match &db {
            DbUrl::Sqlite(p) => sibling(p, "index"),
            DbUrl::Postgres(_) => spool_dir.join("index.snapshot"),
        });
        let index_snapshot_secs = file.index_snapshot_secs.unwrap_or(300);

        let mut limits = Limits::default();
        let l = file.limits;
        limits.body_bytes_max = l.body_bytes_max.unwrap_or(limits.body_bytes_max);
        limits.batch_items_max = l.batch_items_max.unwrap_or(limits.batch_items_max);
        limits.page_rows_max = l.page_rows_max.unwrap_or(limits.page_rows_max);
        limits.files.file_bytes_max = l.file_bytes_max.unwrap_or(limits.files.file_bytes_max);
        limits.files.file_rows_max = l.file_rows_max.unwrap_or(limits.files.file_rows_max);
        limits.files.csv_field_bytes_max = l.csv_field_bytes_max.unwrap_or(limits.files.csv_field_bytes_max);
        limits.files.chunk_rows = l.file_chunk_rows.unwrap_or(limits.files.chunk_rows).max(1);
        limits.webhook_endpoints_max = l.webhook_endpoints_max.unwrap_or(limits.webhook_endpoints_max);
        limits.followed_results_max = l.followed_results_max.unwrap_or(limits.followed_results_max);
        limits.kyc_matches_per_number_per_day_max =
            l.kyc_matches_per_number_per_day_max.unwrap_or(limits.kyc_matches_per_number_per_day_max);
        limits.kyc_attribute_chars_max = l.kyc_attribute_chars_max.unwrap_or(limits.kyc_attribute_chars_max).max(1);
        limits.unbind_institutions_max = l.unbind_institutions_max.unwrap_or(limits.unbind_institutions_max).max(1);
        limits.lookups_listed_max = l.lookups_listed_max.unwrap_or(limits.lookups_listed_max).max(1);
        limits.pending_ports_listed_max = l.pending_ports_listed_max.unwrap_or(limits.pending_ports_listed_max).max(1);
        limits.pending_ports_per_carrier_max =
            l.pending_ports_per_carrier_max.unwrap_or(limits.pending_ports_per_carrier_max);
        limits.write_queue_commands_max = l.write_queue_commands_max.unwrap_or(limits.write_queue_commands_max).max(1);
        limits.write_batch_commands_max = l.write_batch_commands_max.unwrap_or(limits.write_batch_commands_max).max(1);
        limits.notifications_waiting_max =
            l.notifications_waiting_max.unwrap_or(limits.notifications_waiting_max).max(1);
        limits.sms_queue_messages_max = l.sms_queue_messages_max.unwrap_or(limits.sms_queue_messages_max).max(1);
        limits.form_bytes_max = l.form_bytes_max.unwrap_or(limits.form_bytes_max).max(1024);
        limits.console_idle_secs = l.console_idle_secs.unwrap_or(limits.console_idle_secs).max(1);
        limits.console_sign_in_failures_per_client_per_hour_max = l
            .console_sign_in_failures_per_client_per_hour_max
            .unwrap_or(limits.console_sign_in_failures_per_client_per_hour_max)
            .max(1);
        limits.files.check_chunk_rows = l.file_check_chunk_rows.unwrap_or(limits.files.check_chunk_rows).max(1);
        limits.files.chunks_in_flight = l.file_chunks_in_flight.unwrap_or(limits.files.chunks_in_flight).max(1);
        // A run's records are addressed with 32 bits.
        limits.files.sort_bytes = l.file_sort_bytes.unwrap_or(limits.files.sort_bytes).clamp(1 << 20, 1 << 30);
        let mut serve = api::serve::ServeLimits::default();
        serve.header_timeout_ms = l.header_timeout_ms.unwrap_or(serve.header_timeout_ms).max(1);
        serve.body_timeout_ms = l.body_timeout_ms.unwrap_or(serve.body_timeout_ms).max(1);
        serve.body_bytes_per_sec_min = l.body_bytes_per_sec_min.unwrap_or(serve.body_bytes_per_sec_min);
        serve.write_timeout_ms = l.write_timeout_ms.unwrap_or(serve.write_timeout_ms).max(1);
        limits.json_body_timeout_ms = l.json_body_timeout_ms.unwrap_or(limits.json_body_timeout_ms).max(1);
        serve.connections_per_client_max =
            l.connections_per_client_max.unwrap_or(serve.connections_per_client_max).max(1);
        serve.connections_max = l.connections_max.unwrap_or(serve.connections_max).max(1);
        let r = file.rate_limits;
        let rates = &mut limits.rates;
        for (given, rate) in [
            (&r.carrier, &mut rates.carrier),
            (&r.institution, &mut rates.institution),
            (&r.regulator, &mut rates.regulator),
            (&r.portability, &mut rates.portability),
            (&r.anonymous_per_client, &mut rates.anonymous_per_client),
        ] {
            if let Some(given) = given {
                *rate = given.over(*rate);
            }
        }
        let trusted_proxies = api::admit::TrustedProxies::parse(&file.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;

        let mut webhooks = DeliveryConfig { allow_loopback: o.allow_loopback_webhooks, ..DeliveryConfig::default() };
        let w = file.webhooks;
        webhooks.timeout_ms = w.timeout_ms.unwrap_or(webhooks.timeout_ms);
        webhooks.in_flight_max = w.in_flight_max.unwrap_or(webhooks.in_flight_max).max(1);
        webhooks.in_flight_per_endpoint_max =
            w.in_flight_per_endpoint_max.unwrap_or(webhooks.in_flight_per_endpoint_max).max(1);
        webhooks.disable_after_secs =
            w.disable_after_days.map_or(webhooks.disable_after_secs, |d| i64::from(d) * 86_400);
        webhooks.secret_overlap_secs =
            w.secret_overlap_hours.map_or(webhooks.secret_overlap_secs, |h| i64::from(h) * 3_600);
        webhooks.round_budget_ms = w.round_budget_ms.unwrap_or(webhooks.round_budget_ms);
        webhooks.endpoint_round_deliveries_max =
            w.endpoint_round_deliveries_max.unwrap_or(webhooks.endpoint_round_deliveries_max).max(1);
        webhooks.round_endpoints_max = w.round_endpoints_max.unwrap_or(webhooks.round_endpoints_max).max(1);
        // A lane must end well within its claim on the endpoint, or another node could attempt the same
        // deliveries while it still does.
        let lane_ms = webhooks.round_budget_ms + webhooks.timeout_ms + webhooks.shutdown_grace_ms;
        let lease_ms = store::LANE_LEASE_SECS as u64 * 1000;
        if lane_ms > lease_ms * 3 / 4 {
            bail!(
                "[webhooks] round_budget_ms + timeout_ms ({} ms with the shutdown grace) must stay under {} ms, \
                 three quarters of a node's claim on an endpoint's deliveries",
                lane_ms,
                lease_ms * 3 / 4
            );
        }

        let mut aging = match file.aging.default_days {
            Some(days) => AgingPolicy::new(days, AgingPolicy::default_codes()),
            None => AgingPolicy::aging_default(),
        };
        for (code, days) in file.aging.days_by_country_code {
            aging = aging.with_code(calling_code("aging", &code)?, days);
        }

        let h = file.holder;
        let mut holder = HolderConfig::default();
        let otp = &mut holder.otp;
        otp.ttl_secs = h.otp_ttl_secs.unwrap_or(otp.ttl_secs).max(1);
        otp.attempts_max = h.otp_attempts_max.unwrap_or(otp.attempts_max).max(1);
        otp.sends_per_hour_max = h.otp_sends_per_hour_max.unwrap_or(otp.sends_per_hour_max).max(1);
        otp.sends_per_day_max = h.otp_sends_per_day_max.unwrap_or(otp.sends_per_day_max).max(1);
        otp.sends_per_number_per_day_max =
            h.otp_sends_per_number_per_day_max.unwrap_or(otp.sends_per_number_per_day_max).max(1);
        otp.failures_before_lock = h.otp_failures_before_lock.unwrap_or(otp.failures_before_lock).max(1);
        otp.lock_secs = h.otp_lock_secs.unwrap_or(otp.lock_secs).max(1);
        holder.session_secs = h.session_secs.unwrap_or(holder.session_secs).max(1);
        holder.attestation_ttl_secs =
            h.attestation_ttl_days.map_or(holder.attestation_ttl_secs, |d| i64::from(d.max(1)) * 86_400);
        holder.issuer = h.issuer.unwrap_or(holder.issuer);
        holder.ack_working_days = h.ack_working_days.unwrap_or(holder.ack_working_days);
        holder.otp_requests_per_client_per_hour_max =
            h.otp_requests_per_client_per_hour_max.unwrap_or(holder.otp_requests_per_client_per_hour_max).max(1);
        holder.otp_resend_wait_secs = h.otp_resend_wait_secs.unwrap_or(holder.otp_resend_wait_secs).max(0);
        if let Some(name) = h.time_zone {
            holder.time_zone = jiff::tz::TimeZone::get(&name).with_context(|| {
                format!("[holder] time_zone {name:?} is not in the system's time zone database (/usr/share/zoneinfo)")
            })?;
        }
        let mut deadlines = DaysByCallingCode::new(h.unbind_deadline_working_days.unwrap_or(5), []);
        for (code, days) in h.unbind_deadline_working_days_by_country_code {
            deadlines = deadlines.with_code(calling_code("holder", &code)?, days);
        }
        holder.unbind_deadline_working_days = deadlines;
        if let Some(url) = o.public_url.clone().or(file.public_url) {
            let url = url.trim_end_matches('/').to_string();
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if !rest.is_some_and(|r| !r.is_empty() && !r.contains(['/', '?', '#', ' '])) {
                bail!("public_url {url:?} is not http(s)://host[:port] (no path)");
            }
            holder.public_url = Some(url);
        }

        let mut upkeep = workers::UpkeepConfig::default();
        let r = file.retention;
        upkeep.job_outputs_days = r.job_outputs_days.map_or(upkeep.job_outputs_days, i64::from);
        upkeep.lookups_days = r.lookups_days.map_or(upkeep.lookups_days, i64::from);
        // One period: the holder's view reaches as far back as the check log is kept.
        holder.lookups_days = upkeep.lookups_days;

        Ok(Config {
            db,
            listen,
            hash_key,
            hash_key_source,
            spool_dir,
            index_snapshot,
            index_snapshot_secs,
            log_format: file.log_format,
            limits,
            serve,
            trusted_proxies,
            aging,
            webhooks,
            holder,
            upkeep,
            sms_outbox: o.sms_outbox.clone(),
            node_name: o.node_name.clone().or(file.node_name).filter(|n| !n.trim().is_empty()),
        })
    }
}

/// The digits of a country calling code in a configuration table (`"86"` or `"+86"`).
fn calling_code<'a>(section: &str, code: &'a str) -> Result<&'a str> {
    let digits = code.trim_start_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 3 {
        bail!("{section}: {code:?} is not a country calling code (1 to 3 digits)");
    }
    Ok(digits)
}

/// `numlink.db` → `numlink.db.<ext>`, beside the database file.
fn sibling(db: &Path, ext: &str) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{ext}"));
    db.with_file_name(name)
}

fn load_key(path: &Path) -> Result<HashKey> {
    HashKey::load_or_create(path).map_err(|e| anyhow::anyhow!("number hash key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> (tempfile::TempDir, Overrides) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numlink.toml");
        std::fs::write(&path, text).unwrap();
        let o = Overrides { config: Some(path), ..Overrides::default() };
        (dir, o)
    }

    #[test]
    fn every_limit_is_settable_in_the_file() {
        let data = tempfile::tempdir().unwrap();
        let (_dir, o) = with_file(&format!(
            "db = \"sqlite://{}/x.db\"\npublic_url = \"https://numlink.example.cn/\"\n[limits]\nkyc_attribute_chars_max = 64\nunbind_institutions_max = 7\n\
             lookups_listed_max = 50\npending_ports_listed_max = 20\npending_ports_per_carrier_max = 9\n\
             write_queue_commands_max = 100\nwrite_batch_commands_max = 10\nsms_queue_messages_max = 30\n\
             notifications_waiting_max = 500\n\
             file_check_chunk_rows = 5000\nform_bytes_max = 4096\n[webhooks]\nendpoint_round_deliveries_max = 40\n\
             round_endpoints_max = 3\n[holder]\notp_resend_wait_secs = 30\ntime_zone = \"Asia/Shanghai\"\n",
            data.path().display()
        ));
        let l = Config::load(&o).unwrap().limits;
        assert_eq!(
            (l.kyc_attribute_chars_max, l.unbind_institutions_max, l.lookups_listed_max, l.pending_ports_listed_max),
            (64, 7, 50, 20)
        );
        assert_eq!(
            (l.pending_ports_per_carrier_max, l.write_queue_commands_max, l.write_batch_commands_max),
            (9, 100, 10)
        );
        assert_eq!(l.notifications_waiting_max, 500);
        assert_eq!((l.sms_queue_messages_max, l.files.check_chunk_rows), (30, 5000));
        assert_eq!(l.form_bytes_max, 4096);
        let w = Config::load(&o).unwrap().webhooks;
        assert_eq!((w.endpoint_round_deliveries_max, w.round_endpoints_max), (40, 3));
        let h = Config::load(&o).unwrap().holder;
        assert_eq!(h.otp_resend_wait_secs, 30);
        assert_eq!(h.time_zone.iana_name(), Some("Asia/Shanghai"));
        assert_eq!(h.public_url.as_deref(), Some("https://numlink.example.cn"), "without its slash");
        assert!(h.secure_cookies());
    }

    #[test]
    fn rate_limits_and_trusted_proxies_are_read_and_checked() {
        let data = tempfile::tempdir().unwrap();
        let (_dir, o) = with_file(&format!(
            "db = \"sqlite://{}/x.db\"\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\n[rate_limits]\n\
             institution = {{ per_sec = 50, burst = 70 }}\nanonymous_per_client = {{ per_sec = 0 }}\n\
             regulator = {{ burst = 0 }}\n",
            data.path().display()
        ));
        let c = Config::load(&o).unwrap();
        let r = c.limits.rates;
        let d = api::admit::RateLimits::default();
        assert_eq!(r.institution, api::admit::Rate::new(50, 70));
        assert_eq!(r.anonymous_per_client, api::admit::Rate::new(0, d.anonymous_per_client.burst), "0: no limit");
        assert_eq!(r.regulator, api::admit::Rate::new(d.regulator.per_sec, 1), "a burst of at least one");
        assert_eq!(r.carrier, d.carrier, "what is not given keeps its default");
        assert!(c.trusted_proxies.trusts("10.9.8.7".parse().unwrap()));
        assert!(c.trusted_proxies.trusts("2001:db8::1".parse().unwrap()));
        assert!(!c.trusted_proxies.trusts("2001:db8::2".parse().unwrap()));
        for bad in ["trusted_proxies = [\"10.0.0.0/40\"]", "[rate_limits]\nbank = { per_sec = 1 }"] {
            let (_dir, o) = with_file(&format!("db = \"sqlite://{}/x.db\"\n{bad}\n", data.path().display()));
            let e = format!("{:#}", Config::load(&o).unwrap_err());
            assert!(e.contains("10.0.0.0/40") || e.contains("bank"), "{e}");
        }
    }

    #[test]
    fn layers_file_then_flags() {
        let data = tempfile::tempdir().unwrap();
        let (dir, mut o) = with_file(&format!(
            "db = \"sqlite://{}/x.db\"\nlisten = \"127.0.0.1:9000\"\n[limits]\nbatch_items_max = 10\n[aging]\ndays_by_country_code = {{ \"44\" = 30 }}\n\
             [holder]\nunbind_deadline_working_days_by_country_code = {{ \"86\" = 3 }}\notp_sends_per_hour_max = 2\n",
            data.path().display()
        ));
        let c = Config::load(&o).unwrap();
        assert_eq!(c.holder.otp.sends_per_hour_max, 2);
        assert_eq!(
            c.holder.unbind_deadline_working_days.days_for(domain::PhoneNumber::parse("+8613800138000").unwrap()),
            3
        );
        assert_eq!(
            c.holder.unbind_deadline_working_days.days_for(domain::PhoneNumber::parse("+12025550123").unwrap()),
            5
        );
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.batch_items_max, 10);
        assert_eq!(c.aging.days_for(domain::PhoneNumber::parse("+447700900123").unwrap()), 30);
        assert_eq!(c.aging.days_for(domain::PhoneNumber::parse("+12025550123").unwrap()), 45);
        o.listen = Some("127.0.0.1:9001".into());
        o.db = Some(format!("sqlite://{}/y.db", dir.path().display()));
        let c = Config::load(&o).unwrap();
        assert_eq!(c.listen.port(), 9001, "a flag beats the file");
        assert!(format!("{c:?}").contains("y.db"));
        assert!(dir.path().join("y.db.key").exists(), "the key file is created beside the database");
        assert!(format!("{c:?}").contains("hash_key: <redacted"), "secrets never reach the log");
    }

    #[test]
    fn mistakes_are_reported() {
        // (Each with a database of its own, so that no key file is made where the test runs.)
        let data = tempfile::tempdir().unwrap();
        let db = format!("db = \"sqlite://{}/x.db\"\n", data.path().display());
        let (_d, o) = with_file(&format!("{db}[holder]\ntime_zone = \"Mars/Olympus\"\n"));
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("Mars/Olympus"));
        let (_d, o) = with_file(&format!("{db}public_url = \"numlink.example.cn/x\"\n"));
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("public_url"));
        let (_d, o) = with_file(&format!("{db}[webhooks]\ntimeout_ms = 120000\n"));
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("claim on an endpoint's deliveries"));
        let (_d, o) = with_file(&format!("{db}node_name = \"nl-1:8080\"\n"));
        assert_eq!(Config::load(&o).unwrap().node_name.as_deref(), Some("nl-1:8080"));
        let (_d, o) = with_file("lisen = \"127.0.0.1:9000\"\n");
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("lisen"));
        let (_d, mut o) = with_file("");
        o.db = Some("postgres://u@localhost/numlink".into());
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("NUMLINK_HASH_KEY"));
        o.db = Some("mysql://x".into());
        assert!(format!("{:#}", Config::load(&o).err().unwrap()).contains("not supported"));
    }
}
