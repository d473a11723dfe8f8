//! Webhook delivery, per the Standard Webhooks specification: thin CloudEvents payloads, signed
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 over `id.timestamp.body` with a
//! `whsec_` secret), delivered at least once with the same id on every attempt, retried on the
//! specification's schedule with bounded jitter.
//!
//! The pure parts (signing, the schedule, classifying a response, which addresses may be called) are
//! functions; [`Deliverer::run_once`] makes one round of due attempts and records their outcomes.
//!
//! Deliveries are fair across endpoints: a round gives each endpoint with due deliveries a lane of its
//! own, with a bounded share of the round (its oldest `endpoint_round_deliveries_max`, none started
//! after `round_budget_ms`), and lanes run independently: in the background loop an endpoint that
//! never answers holds only its own lane, and every other endpoint's next lane starts as soon as its
//! last one ends.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use hmac::{KeyInit, Mac};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};
use store::{AttemptOutcome, DueDelivery, Notification, Store};
use tokio::sync::Notify;

use crate::WorkerError;

/// The `source` of every event numlink emits.
pub const SOURCE: &str = "numlink";

/// Seconds to wait after the n-th failed attempt (index n), per the Standard Webhooks schedule:
/// immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. Ten attempts in all.
pub const SCHEDULE_SECS: [i64; 10] = [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The longest `Retry-After` honoured, in seconds.
pub const RETRY_AFTER_SECS_MAX: i64 = 86_400;

/// URLs longer than this are refused.
pub const URL_BYTES_MAX: usize = 2048;

/// The most notifications one request may carry (an endpoint's `batchEvents`).
pub const BATCH_EVENTS_MAX: u32 = 100;

/// The media type of a CloudEvents batch: a JSON array of events in structured mode.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// The `webhook-id` of a batch: `bat_` and 20 hex digits of SHA-256 over its notification ids, so
/// that the same notifications sent again carry the same id. (A retry may group them differently, and
/// so carry another: receivers deduplicate a batch's events by their own ids.)
pub fn batch_id<'a>(notification_ids: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for id in notification_ids {
        h.update(id.as_bytes());
        h.update(b",");
    }
    let digest = h.finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("bat_{hex}")
}

/// The CloudEvents 1.0 payload of a notification (structured JSON mode). Thin: ids, the institution's
/// own account reference and dates; never the phone number — except inside the holder's signed proof
/// of tenure that goes with an `unbind.requested`, which states the number the institution bound.
pub fn cloud_event(n: &Notification) -> Value {
    let mut data = serde_json::Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            data.insert(k.to_string(), Value::String(v));
        }
    };
    put("bindingId", n.binding_id.clone());
    put("accountRef", n.account_ref.clone());
    put("eventDate", n.event_date.map(|d| d.to_string()));
    put("reissuableFrom", n.reissuable_from.map(|d| d.to_string()));
    put("endpointId", n.endpoint_id.clone());
    put("reason", n.detail.clone());
    put("unbindRequestId", n.unbind_request_id.clone());
    put("deadline", n.deadline.map(|d| d.to_string()));
    put("attestation", n.attestation.clone());
    json!({
        "specversion": "1.0",
        "id": n.id.as_str(),
        "source": SOURCE,
        "type": n.kind.as_str(),
        "time": n.created_at,
        "datacontenttype": "application/json",
        "data": data,
    })
}

/// A new signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("the OS random generator is available on every supported platform");
    format!("whsec_{}", BASE64.encode(b))
}

/// The Standard Webhooks signature `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = BASE64.decode(encoded).map_err(|_| "the webhook secret is not base64".to_string())?;
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Whether a delivery is signed with `secret`, as a receiver checks it: the `webhook-signature` header
/// holds one or more space-separated signatures (more than one while a rotated secret overlaps), and
/// any of them may match the one computed over the `webhook-id`, `webhook-timestamp` and body. Compared
/// in constant time.
pub fn verify(secret: &str, msg_id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    let Ok(timestamp) = timestamp.trim().parse::<i64>() else { return false };
    let Ok(expected) = sign(secret, msg_id, timestamp, body) else { return false };
    signatures.split(' ').fold(false, |found, sig| {
        found
            | (sig.len() == expected.len()
                && bool::from(subtle::ConstantTimeEq::ct_eq(sig.as_bytes(), expected.as_bytes())))
    })
}

/// When to try again after `attempts` failed attempts (unix seconds), or `None` after the last one.
/// Jitter adds up to a tenth of the delay, derived from `seed` so that it is reproducible; a
/// `Retry-After` is honoured when it asks for longer (up to a day).
pub fn next_attempt_at(now: i64, attempts: u32, retry_after_secs: Option<i64>, seed: u64) -> Option<i64> {
    let delay = *SCHEDULE_SECS.get(attempts as usize)?;
    let jitter = (seed % (delay as u64 / 10 + 1)) as i64;
    let wait = delay + jitter;
    Some(now + retry_after_secs.map_or(wait, |r| wait.max(r.clamp(0, RETRY_AFTER_SECS_MAX))))
}

/// What a response means for the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Gone,
    Failed { error: String, retry_after_secs: Option<i64> },
}

pub fn classify(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        300..=399 => {
            Verdict::Failed { error: format!("answered {status}: redirects are not followed"), retry_after_secs: None }
        }
        429 | 503 => Verdict::Failed {
            error: format!("answered {status}"),
            retry_after_secs: retry_after.and_then(|v| v.trim().parse::<i64>().ok()),
        },
        _ => Verdict::Failed { error: format!("answered {status}"), retry_after_secs: None },
    }
}

/// Whether numlink may call this address: only a globally reachable unicast address, never loopback
/// (unless allowed, for local development) nor any special-purpose range of the IANA registries:
/// private, shared, link-local, unspecified, benchmarking, documentation, reserved, broadcast and
/// multicast IPv4; for IPv6 anything outside global unicast `2000::/3`, and within it the IETF protocol
/// assignments `2001::/23` (Teredo among them), documentation `2001:db8::/32` and `3fff::/20`; and IPv6
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments 192.0.0/24
                || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast 192.88.99/24 (deprecated)
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
                || o[0] >= 240) // reserved 240/4
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            let embedded =
                |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), allow_loopback);
            }
            // IPv4-compatible ::a.b.c.d (but not :: or ::1, handled below and above).
            if seg[..6].iter().all(|&x| x == 0) && !v6.is_unspecified() {
                return address_allowed(embedded(seg[6], seg[7]), allow_loopback);
            }
            // NAT64 64:ff9b::/96 carries the IPv4 address in its last 32 bits.
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|&x| x == 0) {
                return address_allowed(embedded(seg[6], seg[7]), allow_loopback);
            }
            // 6to4 2002::/16 carries it in bits 16..48.
            if seg[0] == 0x2002 {
                return address_allowed(embedded(seg[1], seg[2]), allow_loopback);
            }
            // Global unicast only: everything outside 2000::/3 is special-purpose or unassigned (the
            // IPv4-translated ::ffff:0:0:0/96, discard 100::/64, local-use NAT64 64:ff9b:1::/48, unique
            // local, link-local, multicast, SRv6 5f00::/16…).
            let global_unicast = (seg[0] & 0xe000) == 0x2000;
            // IETF protocol assignments 2001::/23 (Teredo 2001::/32 among them).
            let ietf = seg[0] == 0x2001 && seg[1] < 0x200;
            // Documentation 2001:db8::/32 and 3fff::/20.
            let documentation = (seg[0] == 0x2001 && seg[1] == 0x0db8) || (seg[0] & 0xfff0) == 0x3ff0;
            global_unicast && !ietf && !documentation
        }
    }
}

/// Checks a webhook URL at registration: `https` (or `http` to loopback when allowed), a host, no
/// credentials, and every address it resolves to allowed.
pub async fn check_url(raw: &str, allow_loopback: bool) -> Result<Url, String> {
    if raw.len() > URL_BYTES_MAX {
        return Err(format!("url is longer than {URL_BYTES_MAX} bytes"));
    }
    let url = Url::parse(raw)
        .map_err(|e| format!("url \"{}\" is not valid: {e}", domain::number::truncate_for_message(raw)))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry credentials".into());
    }
    let host = url.host_str().ok_or("url has no host")?.trim_matches(['[', ']']).to_string();
    let port = url.port_or_known_default().ok_or("url has no port")?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("host \"{host}\" cannot be resolved: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("host \"{host}\" resolves to no address"));
    }
    let all_loopback = addrs.iter().all(|a| a.ip().is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && all_loopback => {}
        "http" => return Err("url must be https".into()),
        other => return Err(format!("url scheme \"{other}\" is not supported: use https")),
    }
    // Which address is not said: a name's internal addresses are no business of the caller's.
    if addrs.iter().any(|a| !address_allowed(a.ip(), allow_loopback)) {
        return Err(
            "url resolves to a loopback, private, link-local or otherwise special-purpose address, which numlink does not call"
                .into(),
        );
    }
    Ok(url)
}

/// Whether a URL registered earlier may be called now, under today's configuration (the loopback
/// exception may have been on at registration and be off now): `https`, or `http` only while loopback
/// is allowed; an address written in the URL must be allowed. A name's addresses are checked when it is
/// resolved, by the guarded resolver of [`guarded_client`].
pub fn callable(raw: &str, allow_loopback: bool) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|_| "the url is not valid".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        other => return Err(format!("\"{other}\" urls are not called: https only")),
    }
    if let Some(ip) = url.host_str().and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        && !address_allowed(ip, allow_loopback)
    {
        return Err(format!("{ip} is an address numlink does not call"));
    }
    Ok(())
}

/// A resolver that drops addresses numlink may not call, so the check holds at connect time too
/// (a name cannot be re-pointed at an internal address after registration).
#[derive(Debug)]
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| address_allowed(a.ip(), allow)).collect();
            if addrs.is_empty() {
                let e: Box<dyn StdError + Send + Sync> =
                    format!("{host} resolves to no address numlink may call").into();
                return Err(e);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for calls out to participants (webhooks, SMS gateways): no redirects followed, no
/// proxy, the guarded resolver, the configured timeout.
pub fn guarded_client(config: &DeliveryConfig, user_agent: &str) -> Result<reqwest::Client, WorkerError> {
    // reqwest is built without a bundled crypto provider; use ring's. A second install (another
    // client in the same process) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve names itself, past the guarded resolver.
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_loopback: config.allow_loopback }))
        .timeout(Duration::from_millis(config.timeout_ms))
        .user_agent(user_agent)
        .build()
        .map_err(|e| WorkerError::Setup(format!("building the HTTP client: {e}")))
}

/// Delivery limits and policy, each with its unit in the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// One attempt's timeout.
    pub timeout_ms: u64,
    /// Attempts in flight at once, in total: lanes run at once are this over
    /// `in_flight_per_endpoint_max` (128 by default), each with its own attempts, so that endpoints
    /// that never answer hold their own lanes and no one else's attempts.
    pub in_flight_max: usize,
    /// Attempts in flight at once to one endpoint.
    pub in_flight_per_endpoint_max: usize,
    /// Due deliveries one endpoint's lane takes (its oldest); for an endpoint that takes batches, as
    /// many requests' worth at most, up to `store::BATCH_LANE_FACTOR_MAX` times this.
    pub endpoint_round_deliveries_max: u32,
    /// Endpoints given a lane per round; the others wait for the next round.
    pub round_endpoints_max: u32,
    /// No attempt of a lane starts after this long.
    pub round_budget_ms: u64,
    /// Allow `http://127.0.0.1`-style endpoints (local development and tests only).
    pub allow_loopback: bool,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after_secs: i64,
    /// How long a rotated-out secret keeps signing.
    pub secret_overlap_secs: i64,
    /// How long, once the server stops, lanes wait for attempts in flight before they record what
    /// they made (the rest stay due, and go out again after the restart).
    pub shutdown_grace_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout_ms: 15_000,
            in_flight_max: 1_024,
            in_flight_per_endpoint_max: 8,
            endpoint_round_deliveries_max: 1_000,
            round_endpoints_max: 256,
            round_budget_ms: 2_000,
            allow_loopback: false,
            disable_after_secs: 5 * 86_400,
            secret_overlap_secs: 86_400,
            shutdown_grace_ms: 5_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deliverer {
    store: Store,
    client: reqwest::Client,
    config: DeliveryConfig,
    wake: Arc<Notify>,
    /// Lanes running at once (`in_flight_max / in_flight_per_endpoint_max`).
    lanes: Arc<tokio::sync::Semaphore>,
    /// Endpoints with a lane running: a round does not start a second one.
    busy: Arc<std::sync::Mutex<HashSet<String>>>,
    /// Set when the background loop stops: lanes start no more attempts, and record what they made.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// How long an endpoint's lane waits, after its outcomes could not be recorded, before it ends (and its
/// deliveries, still due, are attempted again).
const RECORD_RETRY: Duration = Duration::from_secs(5);

/// An endpoint's lane holds its place in [`Deliverer::busy`] (and a lane's permit) until the lane ends,
/// however it ends.
struct LaneGuard {
    endpoint: String,
    busy: Arc<std::sync::Mutex<HashSet<String>>>,
    wake: Arc<Notify>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for LaneGuard {
    fn drop(&mut self) {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.endpoint);
        // The endpoint may have more due: the next round starts its next lane.
        self.wake.notify_one();
    }
}

impl Deliverer {
    pub fn new(store: Store, config: DeliveryConfig) -> Result<Deliverer, WorkerError> {
        let client = guarded_client(&config, concat!("numlink-webhooks/", env!("CARGO_PKG_VERSION")))?;
        let lanes_max = (config.in_flight_max / config.in_flight_per_endpoint_max.max(1)).max(1);
        Ok(Deliverer {
            store,
            client,
            config,
            wake: Arc::new(Notify::new()),
            lanes: Arc::new(tokio::sync::Semaphore::new(lanes_max)),
            busy: Arc::default(),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        })
    }

    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn config(&self) -> DeliveryConfig {
        self.config
    }

    /// Takes the due deliveries of every endpoint without a lane running (its share of a round) and
    /// marks those endpoints busy; each queue is to run as [`Deliverer::lane`].
    async fn start_round(&self) -> Result<Vec<(LaneGuard, Vec<DueDelivery>)>, WorkerError> {
        let now = self.store.clock().now().as_second();
        let busy: Vec<String> = self.busy.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        let queues = self
            .store
            .due_by_endpoint(now, self.config.endpoint_round_deliveries_max, self.config.round_endpoints_max, busy)
            .await?;
        let mut lanes = Vec::with_capacity(queues.len());
        for queue in queues {
            let endpoint = queue[0].endpoint.id.to_string();
            // As many lanes as may run; the other endpoints' turn comes when one ends.
            let permit = self.lanes.clone().try_acquire_owned().ok();
            let Some(permit) =
                permit.filter(|_| self.busy.lock().unwrap_or_else(|p| p.into_inner()).insert(endpoint.clone()))
            else {
                // Claimed for a lane that does not run now: given back to any node.
                self.store.end_lane(&endpoint).await?;
                continue;
            };
            let guard = LaneGuard { endpoint, busy: self.busy.clone(), wake: self.wake.clone(), _permit: permit };
            lanes.push((guard, queue));
        }
        Ok(lanes)
    }

    /// One endpoint's lane: its queue attempted at most `in_flight_per_endpoint_max` at a time, none
    /// started after `round_budget_ms` or once the loop stops, the outcomes recorded in one
    /// transaction. Returns the number of attempts made.
    async fn lane(self, guard: LaneGuard, queue: Vec<DueDelivery>) -> usize {
        // No attempt starts after the budget: a slow endpoint holds its lane for at most the budget
        // plus one timeout, and the rest of its queue waits for its next lane.
        let started = std::time::Instant::now();
        let budget = Duration::from_millis(self.config.round_budget_ms);
        let me = &self;
        // An endpoint that takes batches gets its queue in requests of up to `batch_events`.
        let per_request = queue.first().map_or(1, |d| d.endpoint.batch_events.clamp(1, BATCH_EVENTS_MAX)) as usize;
        let mut requests = Vec::with_capacity(queue.len().div_ceil(per_request));
        let mut queue = queue.into_iter().peekable();
        while queue.peek().is_some() {
            requests.push(queue.by_ref().take(per_request).collect::<Vec<DueDelivery>>());
        }
        let mut attempts = futures_util::stream::iter(requests)
            .map(|request| async move {
                if started.elapsed() > budget || *me.stopping.borrow() {
                    return Vec::new();
                }
                // Each attempt is stamped when it is made, not when the lane began.
                let outcomes = me.attempt(&request, me.store.clock().now().as_second()).await;
                request.into_iter().zip(outcomes).map(|(d, o)| (d.notification.seq, d.endpoint.id, o)).collect()
            })
            .buffer_unordered(self.config.in_flight_per_endpoint_max.max(1));
        // Once the loop stops, attempts in flight get a grace period; what they made by then is
        // recorded, the rest stay due.
        let mut stop = self.stopping.subscribe();
        let grace = Duration::from_millis(self.config.shutdown_grace_ms);
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(stopped);
        let mut outcomes: Vec<(i64, store::EndpointId, AttemptOutcome)> = Vec::new();
        loop {
            tokio::select! {
                next = attempts.next() => match next {
                    Some(made) => outcomes.extend(made),
                    None => break,
                },
                () = &mut stopped => break,
            }
        }
        drop(attempts);
        let made = outcomes.len();
        // Recording the outcomes ends the lane's claim on the endpoint; without any, it is ended here.
        let recorded = if made == 0 {
            self.store.end_lane(&guard.endpoint).await
        } else {
            self.store.record_attempts(outcomes, self.config.disable_after_secs).await
        };
        if recorded.is_ok() && made > 0 {
            tracing::info!(endpoint = %guard.endpoint, attempts = made, "delivery attempts recorded");
        }
        if let Err(e) = recorded {
            // The deliveries stay due as they were: attempted again, with the same webhook-id, after a
            // pause (not at once, which would send them again and again while the store cannot record).
            tracing::error!(endpoint = %guard.endpoint, error = %e, "recording delivery attempts failed");
            if !*self.stopping.borrow() {
                tokio::time::sleep(RECORD_RETRY).await;
            }
        }
        drop(guard);
        made
    }

    /// One round, waited for: every endpoint with due deliveries and no lane running gets a lane
    /// (its own attempts, a bounded share); returns the number of attempts made once they have all ended.
    pub async fn run_once(&self) -> Result<usize, WorkerError> {
        let lanes: Vec<_> = self
            .start_round()
            .await?
            .into_iter()
            .map(|(guard, queue)| tokio::spawn(self.clone().lane(guard, queue)))
            .collect();
        let mut made = 0;
        for lane in lanes {
            made += lane.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "a delivery lane failed");
                0
            });
        }
        Ok(made)
    }

    /// One request to the endpoint carrying `request` (one notification, or a batch for an endpoint
    /// that takes them), and what it means for each of them.
    async fn attempt(&self, request: &[DueDelivery], now: i64) -> Vec<AttemptOutcome> {
        let Some(first) = request.first() else { return Vec::new() };
        let endpoint = &first.endpoint;
        let batch = endpoint.batch_events > 1;
        let msg_id = if batch {
            batch_id(request.iter().map(|d| d.notification.id.as_str()))
        } else {
            first.notification.id.to_string()
        };
        // A batch's jitter is the batch's own, so that its deliveries with as many attempts come due
        // together and go out again as one batch, under the same webhook-id.
        let batch_seed = (request.len() > 1).then(|| hash_str(&msg_id));
        let failed = |status: Option<u16>, error: String, retry_after: Option<i64>| -> Vec<AttemptOutcome> {
            request
                .iter()
                .map(|d| {
                    let attempts = d.attempts + 1;
                    let seed = batch_seed.unwrap_or(d.notification.seq as u64)
                        ^ u64::from(attempts).rotate_left(32)
                        ^ hash_str(&d.endpoint.id);
                    AttemptOutcome::Failed {
                        status,
                        error: error.clone(),
                        next_attempt_at: next_attempt_at(now, attempts, retry_after, seed),
                    }
                })
                .collect()
        };
        let encoded = if batch {
            serde_json::to_vec(&request.iter().map(|d| cloud_event(&d.notification)).collect::<Vec<_>>())
        } else {
            serde_json::to_vec(&cloud_event(&first.notification))
        };
        let body = match encoded {
            Ok(b) => b,
            Err(e) => return failed(None, format!("cannot encode the payload: {e}"), None),
        };
        let mut signatures = Vec::new();
        for secret in endpoint.signing_secrets(now) {
            match sign(secret, &msg_id, now, &body) {
                Ok(s) => signatures.push(s),
                Err(e) => return failed(None, e, None),
            }
        }
        // The resolver guards names; the scheme and an address written in the URL are checked here.
        if let Err(e) = callable(&endpoint.url, self.config.allow_loopback) {
            return failed(None, e, None);
        }
        let sent = self
            .client
            .post(&endpoint.url)
            .header("content-type", if batch { BATCH_CONTENT_TYPE } else { "application/json" })
            .header("webhook-id", msg_id.as_str())
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body)
            .send()
            .await;
        let each = |outcome: AttemptOutcome| vec![outcome; request.len()];
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
                match classify(status, retry_after.as_deref()) {
                    Verdict::Delivered => each(AttemptOutcome::Delivered { status }),
                    Verdict::Gone => each(AttemptOutcome::Gone { status }),
                    Verdict::Failed { error, retry_after_secs } => failed(Some(status), error, retry_after_secs),
                }
            }
            Err(e) if e.is_timeout() => failed(None, format!("no answer within {} ms", self.config.timeout_ms), None),
            Err(e) => failed(None, format!("cannot deliver: {}", error_chain(&e)), None),
        }
    }

    /// Runs until `shutdown` resolves, lanes independent of each other: a round starts a lane for
    /// each endpoint with due deliveries and none running, without waiting for them; the next round
    /// comes when a lane ends, when woken (new notifications), or after a second. At shutdown the
    /// lanes start no more attempts, give those in flight a grace period and record what they made;
    /// the deliveries not attempted stay due, and go out again (same webhook-id) after the restart.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        const IDLE: Duration = Duration::from_secs(1);
        tokio::pin!(shutdown);
        let mut lanes = tokio::task::JoinSet::new();
        loop {
            let pause = match self.start_round().await {
                Ok(started) => {
                    for (guard, queue) in started {
                        lanes.spawn(self.clone().lane(guard, queue));
                    }
                    IDLE
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhook delivery round failed; retrying");
                    IDLE * 5
                }
            };
            tokio::select! {
                () = &mut shutdown => {
                    self.stopping.send_replace(true);
                    while lanes.join_next().await.is_some() {}
                    return;
                }
                () = self.wake.notified() => {}
                Some(_) = lanes.join_next(), if !lanes.is_empty() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn error_chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_standard_webhooks_test_vector() {
        let sig = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn a_receiver_verifies_any_of_the_signatures_and_nothing_else() {
        let (secret, id, body) = ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_1", &b"{}"[..]);
        let good = sign(secret, id, 1649367553, body).unwrap();
        assert!(verify(secret, id, "1649367553", &good, body));
        assert!(verify(secret, id, "1649367553", &format!("v1,b2xk {good}"), body), "a rotated secret's overlap");
        for (ts, sigs, body) in [
            ("1649367554", good.as_str(), body),
            ("1649367553", "v1,b2xk", body),
            ("1649367553", good.as_str(), &b"{ }"[..]),
            ("soon", good.as_str(), body),
            ("1649367553", "", body),
            ("1649367553", &good[..good.len() - 1], body),
        ] {
            assert!(!verify(secret, id, ts, sigs, body), "{ts} {sigs}");
        }
        assert!(!verify("whsec_not base64!", id, "1649367553", &good, body));
    }

    #[test]
    fn schedule_with_bounded_jitter_and_retry_after() {
        for (attempts, delay) in SCHEDULE_SECS.iter().enumerate().skip(1) {
            for seed in [0, 1, 7, 12345, u64::MAX] {
                let at = next_attempt_at(1_000, attempts as u32, None, seed).unwrap();
                assert!((1_000 + delay..=1_000 + delay + delay / 10).contains(&at), "attempt {attempts}: {at}");
            }
        }
        assert_eq!(next_attempt_at(1_000, 10, None, 3), None, "ten attempts in all");
        assert_eq!(next_attempt_at(1_000, 1, Some(120), 0), Some(1_120), "Retry-After asks for longer");
        assert_eq!(next_attempt_at(1_000, 3, Some(60), 0), Some(2_800), "the schedule when it is longer");
        assert_eq!(next_attempt_at(0, 1, Some(10_000_000), 0), Some(RETRY_AFTER_SECS_MAX));
    }

    #[test]
    fn classifies_responses() {
        assert_eq!(classify(204, None), Verdict::Delivered);
        assert_eq!(classify(410, None), Verdict::Gone);
        assert!(matches!(classify(302, None), Verdict::Failed { .. }));
        assert_eq!(
            classify(429, Some("30")),
            Verdict::Failed { error: "answered 429".into(), retry_after_secs: Some(30) }
        );
        assert!(matches!(classify(500, Some("30")), Verdict::Failed { retry_after_secs: None, .. }));
    }

    #[test]
    fn internal_addresses_are_refused() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::",
            "::ffff:10.0.0.1",
            // IPv4-translated, Teredo, discard, documentation, other IETF assignments, local NAT64.
            "::ffff:0:808:808",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "2001:2::1",
            "2001:10::1",
            "64:ff9b:1::808:808",
            "5f00::1",
            "192.88.99.1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
        ] {
            assert!(!address_allowed(ip(bad), false), "{bad}");
        }
        for good in
            ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1", "64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"]
        {
            assert!(address_allowed(ip(good), false), "{good}");
        }
        assert!(address_allowed(ip("127.0.0.1"), true));
        assert!(!address_allowed(ip("10.0.0.1"), true), "the loopback exception is for loopback only");
    }

    #[test]
    fn a_registered_url_is_checked_again_when_called() {
        assert!(callable("https://8.8.8.8/hook", false).is_ok());
        assert!(callable("https://gateway.example/sms", false).is_ok(), "names are checked when resolved");
        // Registered while loopback was allowed; called after a restart without it.
        assert!(callable("http://127.0.0.1:9000/sms", true).is_ok());
        assert!(callable("http://127.0.0.1:9000/sms", false).is_err());
        assert!(callable("https://127.0.0.1:9000/sms", false).unwrap_err().contains("127.0.0.1"));
        assert!(callable("https://[::ffff:0:a00:1]/", false).is_err());
        assert!(callable("http://8.8.8.8/hook", false).is_err(), "https only without the loopback exception");
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(check_url("https://8.8.8.8/hook", false).await.is_ok());
        assert!(check_url("http://8.8.8.8/hook", false).await.unwrap_err().contains("https"));
        assert!(check_url("https://127.0.0.1/hook", false).await.unwrap_err().contains("loopback"));
        assert!(check_url("https://10.0.0.5/hook", false).await.unwrap_err().contains("private"));
        // A name's internal address is not disclosed.
        let err = check_url("https://localhost:8443/hook", false).await.unwrap_err();
        assert!(!err.contains("127.0.0.1") && !err.contains("::1"), "{err}");
        assert!(check_url("https://[2001:db8::1]/hook", false).await.is_err());
        assert!(check_url("https://[::1]:8443/", false).await.is_err());
        assert!(check_url("https://user:pw@8.8.8.8/", false).await.unwrap_err().contains("credentials"));
        assert!(check_url("http://127.0.0.1:9000/hook", true).await.is_ok());
        assert!(check_url("http://localhost:9000/hook", true).await.is_ok());
        assert!(check_url("ftp://8.8.8.8/", false).await.is_err());
        assert!(check_url("not a url", false).await.is_err());
    }
}
