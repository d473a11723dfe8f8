//! Who a request comes from, and whether it is let in, before any handler runs:
//!
//! - the client's address: the socket's peer, or, when the peer is a configured trusted proxy, the
//!   address that proxy names in `X-Forwarded-For` (a forwarded-for header from anyone else is
//!   ignored: a client cannot pick the address it is counted under);
//! - the participant of an API key (`Authorization: Bearer nlk_…`), authenticated once here and handed
//!   to the handler as its [`Caller`];
//! - rate limits (GCRA token buckets, [`governor`]): per participant, by its role, for requests with a
//!   valid API key; per client address (an IPv4 address or an IPv6 /64) for everything else (holders,
//!   pages, public documents, and keys that are not valid). Over a limit: `429 TOO_MANY_REQUESTS` with
//!   `Retry-After`.
//!
//! Limits are counted by each node on its own: behind a balancer over N nodes a caller can reach up to
//! N times a rate. The limits that guard against guessing (code requests, wrong console keys) are
//! counted in the database across nodes instead ([`crate::limit::ClientLimiter`]).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use store::{ApiKey, Role, Store};

use crate::auth::{Caller, KeyRefused};
use crate::error::{ApiError, ErrorCode};
use crate::limit::client_key;

/// The client a request comes from, as [`TrustedProxies::client`] resolved it. Absent when the
/// request did not come through a socket (the router called in-process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// A steady rate and the burst above it a caller may spend at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests a second, sustained; 0: no limit.
    pub per_sec: u32,
    /// Requests at once, beyond which the steady rate applies (at least 1).
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_sec: u32, burst: u32) -> Rate {
        Rate { per_sec, burst }
    }

    fn quota(self) -> Option<Quota> {
        let per_sec = NonZeroU32::new(self.per_sec)?;
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Some(Quota::per_second(per_sec).allow_burst(burst))
    }
}

/// The rate limits, each a [`Rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Per carrier (all its API keys together).
    pub carrier: Rate,
    /// Per institution: its checks, bindings, files and answers.
    pub institution: Rate,
    pub regulator: Rate,
    /// The number-portability database.
    pub portability: Rate,
    /// Per client address, for every request without a valid API key.
    pub anonymous_per_client: Rate,
}

impl Default for RateLimits {
    /// Far above what one participant's integration sends (a carrier's events and a bank's checks go
    /// in batches and files for volume), low enough that a runaway client cannot take a node.
    fn default() -> Self {
        RateLimits {
            carrier: Rate::new(1_000, 2_000),
            institution: Rate::new(1_000, 2_000),
            regulator: Rate::new(100, 200),
            portability: Rate::new(1_000, 2_000),
            anonymous_per_client: Rate::new(50, 100),
        }
    }
}

impl RateLimits {
    fn for_role(&self, role: Role) -> Rate {
        match role {
            Role::Carrier => self.carrier,
            Role::Institution => self.institution,
            Role::Regulator => self.regulator,
            Role::Portability => self.portability,
        }
    }
}

/// One block of addresses: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    base: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(text: &str) -> Result<Net, String> {
        let bad =
            || format!("{text:?} is not an address or a block of addresses (such as 10.0.0.0/8 or 2001:db8::/32)");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let base: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err(bad());
        }
        Ok(Net { base, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed: the balancers or TLS terminators in front of
/// numlink. Empty (the default), every client is the socket's peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Net>);

/// Addresses read from `X-Forwarded-For`, from the right, before giving up on it.
const FORWARDED_HOPS_MAX: usize = 16;

impl TrustedProxies {
    /// From addresses and blocks (`["10.0.0.0/8", "192.0.2.7"]`).
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedProxies, String> {
        list.iter().map(|s| Net::parse(s.as_ref())).collect::<Result<_, _>>().map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from `peer`. Each trusted proxy appends the address it received the
    /// request from to `X-Forwarded-For`, so the header is read from the right: past the trusted
    /// proxies, the first address is the client. What lies to its left was written by the client
    /// and is not believed. A header that cannot be read there gives the last trusted hop.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut last = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .flat_map(|v| v.to_str().unwrap_or("").rsplit(',').map(str::trim).collect::<Vec<_>>());
        for hop in hops.take(FORWARDED_HOPS_MAX) {
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                return last;
            };
            if !self.trusts(ip) {
                return ip;
            }
            last = ip;
        }
        last
    }
}

type Limiter<K> = DefaultKeyedRateLimiter<K>;

/// Checks between sweeps of the buckets that have filled up again (and so hold nothing).
const SWEEP_EVERY: u64 = 1 << 16;

/// The rate limiters and the trusted proxies: [`admit`]'s state.
#[derive(Debug)]
pub struct Admission {
    rates: RateLimits,
    trusted: TrustedProxies,
    /// By role ([`Role`] in declaration order), by participant seq.
    by_participant: [Option<Limiter<i64>>; 4],
    by_client: Option<Limiter<IpAddr>>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl Admission {
    pub fn new(rates: RateLimits, trusted: TrustedProxies) -> Admission {
        Admission {
            rates,
            trusted,
            by_participant: [Role::Carrier, Role::Institution, Role::Regulator, Role::Portability]
                .map(|role| rates.for_role(role).quota().map(Limiter::keyed)),
            by_client: rates.anonymous_per_client.quota().map(Limiter::keyed),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }

    pub fn rates(&self) -> RateLimits {
        self.rates
    }

    fn role_slot(role: Role) -> usize {
        match role {
            Role::Carrier => 0,
            Role::Institution => 1,
            Role::Regulator => 2,
            Role::Portability => 3,
        }
    }

    /// `Err(retry_after_secs)` when over.
    fn check<K: std::hash::Hash + Eq + Clone>(&self, limiter: &Limiter<K>, key: &K) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    fn participant(&self, seq: i64, role: Role) -> Result<(), u64> {
        match &self.by_participant[Admission::role_slot(role)] {
            Some(l) => self.check(l, &seq),
            None => Ok(()),
        }
    }

    fn client(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.by_client {
            Some(l) => self.check(l, &client_key(ip)),
            None => Ok(()),
        }
    }
}

/// The API key of `Authorization: Bearer nlk_…`, if the request presents one.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && key.starts_with(ApiKey::PREFIX)
        && key.len() <= crate::auth::KEY_BYTES_MAX)
        .then_some(key)
}

fn limited(retry_after_secs: u64, whose: &str) -> Response {
    metrics::counter!("numlink_rate_limited_total", "limit" => whose.to_string()).increment(1);
    ApiError::new(
        ErrorCode::TooManyRequests,
        format!("too many requests from this {whose}: slow down, and try again after Retry-After seconds"),
    )
    .with_retry_after(i64::try_from(retry_after_secs.max(1)).unwrap_or(i64::MAX))
    .into_response()
}

/// The middleware's work (the router's `admit` layer hands it the state): resolves the client,
/// authenticates an API key, and applies the rate limits.
pub async fn admit(admission: &Admission, store: &Store, mut req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| admission.trusted.client(peer.ip(), req.headers()));
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let outcome = match api_key(req.headers()) {
        Some(key) => match store.authenticate(key).await {
            Ok(Some(p)) => {
                let outcome = admission.participant(p.seq, p.role).map_err(|r| (r, "participant"));
                req.extensions_mut().insert(Caller(p));
                outcome
            }
            Ok(None) => {
                req.extensions_mut().insert(KeyRefused);
                client.map_or(Ok(()), |ip| admission.client(ip)).map_err(|r| (r, "client address"))
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => client.map_or(Ok(()), |ip| admission.client(ip)).map_err(|r| (r, "client address")),
    };
    match outcome {
        Ok(()) => next.run(req).await,
        Err((retry, whose)) => limited(retry, whose),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blocks_contain_what_they_should() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7"]).unwrap();
        assert!(t.trusts(ip("10.255.1.2")));
        assert!(t.trusts(ip("::ffff:10.1.1.1")), "an IPv4-mapped address is the IPv4 one");
        assert!(t.trusts(ip("192.0.2.7")));
        assert!(!t.trusts(ip("192.0.2.8")));
        assert!(!t.trusts(ip("11.0.0.1")));
        let v6 = TrustedProxies::parse(&["2001:db8::/32"]).unwrap();
        assert!(v6.trusts(ip("2001:db8:ffff::1")));
        assert!(!v6.trusts(ip("2001:db9::1")));
        let all = TrustedProxies::parse(&["0.0.0.0/0"]).unwrap();
        assert!(all.trusts(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy.local", "::/129", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // From a trusted proxy: the address it appended.
        assert_eq!(t.client(ip("10.0.0.1"), &forwarded(&["203.0.113.5"])), ip("203.0.113.5"));
        // What the client wrote itself, to the left, is not believed.
        assert_eq!(t.client(ip("10.0.0.1"), &forwarded(&["1.2.3.4, 203.0.113.5"])), ip("203.0.113.5"));
        // Two trusted proxies in a row, and the header split over two lines.
        assert_eq!(t.client(ip("10.0.0.1"), &forwarded(&["1.2.3.4, 203.0.113.5", "10.0.0.2"])), ip("203.0.113.5"));
        // From anyone else: the peer, whatever the header says.
        assert_eq!(t.client(ip("198.51.100.1"), &forwarded(&["203.0.113.5"])), ip("198.51.100.1"));
        // No header, or one that cannot be read: the last trusted hop.
        assert_eq!(t.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(t.client(ip("10.0.0.1"), &forwarded(&["203.0.113.5, junk"])), ip("10.0.0.1"));
        assert_eq!(t.client(ip("10.0.0.1"), &forwarded(&["junk, 10.0.0.3"])), ip("10.0.0.3"));
        // With no trusted proxies, the peer.
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &forwarded(&["203.0.113.5"])), ip("10.0.0.1"));
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_when_to_retry() {
        let a = Admission::new(
            RateLimits { anonymous_per_client: Rate::new(1, 3), ..RateLimits::default() },
            TrustedProxies::default(),
        );
        for _ in 0..3 {
            assert_eq!(a.client(ip("203.0.113.5")), Ok(()));
        }
        assert_eq!(a.client(ip("203.0.113.5")), Err(1), "one a second: retry in a second");
        // Another address, and another address in the same IPv6 /64.
        assert_eq!(a.client(ip("203.0.113.6")), Ok(()));
        for _ in 0..3 {
            assert_eq!(a.client(ip("2001:db8:1:2::1")), Ok(()));
        }
        assert!(a.client(ip("2001:db8:1:2::ffff")).is_err(), "one /64 is one client");
        // A participant's bucket is its role's; a rate of 0 is no limit.
        let a = Admission::new(
            RateLimits { carrier: Rate::new(0, 0), institution: Rate::new(1, 1), ..RateLimits::default() },
            TrustedProxies::default(),
        );
        for _ in 0..100 {
            assert_eq!(a.participant(7, Role::Carrier), Ok(()));
        }
        assert_eq!(a.participant(7, Role::Institution), Ok(()));
        assert!(a.participant(7, Role::Institution).is_err());
        assert_eq!(a.participant(8, Role::Institution), Ok(()));
    }
}
