//! A per-client limit on an anonymous endpoint: at most `max` requests per client in a fixed window,
//! counted in the database for every node (see [`ClientLimiter`]).
//!
//! A client is an IPv4 address, or an IPv6 /64: one subscriber's line or host is given a whole /64, so
//! counting single IPv6 addresses would give one client 2^64 of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use store::{Store, StoreError};

/// Who a client is, for limits: its IPv4 address (an IPv4-mapped IPv6 address counts as the IPv4 one),
/// or the /64 its IPv6 address is in.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Clients remembered as over their limit, before the past ones are swept.
const TRACKED_MAX: usize = 100_000;

/// A limit on an anonymous client's requests in a fixed window, counted in the database so that it
/// holds across every node. Only allowed requests are counted; a client the database said is over
/// is remembered here until its window ends, and refused without asking it again: a flood from one
/// address costs at most `max` writes per window, and a node that has not heard of it one more.
#[derive(Debug)]
pub struct ClientLimiter {
    /// What the count is of, in the database (`otp-request`, `console-sign-in-failure`).
    scope: &'static str,
    max: u32,
    window_secs: i64,
    /// Client ([`client_key`]) → when its window ends, for clients known to be over.
    over_until: Mutex<HashMap<IpAddr, i64>>,
}

impl ClientLimiter {
    pub fn new(scope: &'static str, max: u32, window_secs: i64) -> ClientLimiter {
        ClientLimiter { scope, max, window_secs: window_secs.max(1), over_until: Mutex::new(HashMap::new()) }
    }

    /// At most this many in a window.
    pub fn max(&self) -> u32 {
        self.max
    }

    fn known_over(&self, client: IpAddr, now: i64) -> Option<i64> {
        let over = self.over_until.lock().unwrap_or_else(|p| p.into_inner());
        over.get(&client).filter(|&&until| until > now).map(|until| until - now)
    }

    fn remember_over(&self, client: IpAddr, now: i64, retry_after_secs: i64) {
        let mut over = self.over_until.lock().unwrap_or_else(|p| p.into_inner());
        if over.len() >= TRACKED_MAX {
            over.retain(|_, until| *until > now);
        }
        over.insert(client, now + retry_after_secs);
    }

    /// Counts a request from `ip` (as its [`client_key`]); `Ok(Err(retry_after_secs))` if the client
    /// is over the limit.
    pub async fn check(&self, store: &Store, ip: IpAddr) -> Result<Result<(), i64>, StoreError> {
        let client = client_key(ip);
        let now = store.clock().now().as_second();
        if let Some(retry) = self.known_over(client, now) {
            return Ok(Err(retry));
        }
        let counted = store.count_client(self.scope, client, self.max, self.window_secs).await?;
        if let Err(retry) = counted {
            self.remember_over(client, now, retry);
        }
        Ok(counted)
    }

    /// Whether `ip` is over the limit, without counting a request: `Some(retry_after_secs)`.
    pub async fn over(&self, store: &Store, ip: IpAddr) -> Result<Option<i64>, StoreError> {
        let client = client_key(ip);
        let now = store.clock().now().as_second();
        if let Some(retry) = self.known_over(client, now) {
            return Ok(Some(retry));
        }
        let over = store.client_over(self.scope, client, self.max, self.window_secs).await?;
        if let Some(retry) = over {
            self.remember_over(client, now, retry);
        }
        Ok(over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:2:ffff:ffff:ffff:fffe")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")), "the next /64");
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }
}
