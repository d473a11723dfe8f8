//! A per-client limit on an anonymous endpoint: at most `max` requests per client in a fixed window.
//! In memory, per process (a deployment with several nodes or a proxy in front adds its own at the
//! edge); bounded: entries of past windows are dropped once the table grows.
//!
//! A client is an IPv4 address, or an IPv6 /64: one subscriber's line or host is given a whole /64, so
//! counting single IPv6 addresses would give one client 2^64 of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

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

/// Client addresses tracked before past windows are swept.
const TRACKED_MAX: usize = 100_000;

#[derive(Debug)]
pub struct ClientLimiter {
    max: u32,
    window_secs: i64,
    /// Address → (start of its window, requests in it).
    seen: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl ClientLimiter {
    pub fn new(max: u32, window_secs: i64) -> ClientLimiter {
        ClientLimiter { max, window_secs: window_secs.max(1), seen: Mutex::new(HashMap::new()) }
    }

    /// Counts a request from `ip` (as its [`client_key`]) at `now` (unix seconds); `Err(retry_after_secs)`
    /// if over the limit.
    pub fn check(&self, ip: IpAddr, now: i64) -> Result<(), i64> {
        let ip = client_key(ip);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= TRACKED_MAX {
            seen.retain(|_, (start, _)| *start > now - self.window_secs);
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if entry.0 <= now - self.window_secs {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return Err(entry.0 + self.window_secs - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

impl ClientLimiter {
    /// Whether `ip` is over the limit at `now`, without counting a request: `Some(retry_after_secs)`.
    pub fn over(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let &(start, count) = seen.get(&client_key(ip))?;
        (start > now - self.window_secs && count >= self.max).then_some(start + self.window_secs - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_in_a_window() {
        let l = ClientLimiter::new(2, 3600);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(l.check(a, 1000).is_ok());
        assert!(l.check(a, 1001).is_ok());
        assert_eq!(l.check(a, 1002), Err(3598));
        assert!(l.check(b, 1002).is_ok(), "another address has its own count");
        assert!(l.check(a, 4600).is_ok(), "a new window");
        assert_eq!(l.over(a, 4601), None, "one of two in this window");
        assert!(l.check(a, 4602).is_ok());
        assert_eq!(l.over(a, 4603), Some(3597), "looking does not count");
        assert_eq!(l.over(a, 4603), Some(3597));
        assert_eq!(l.over(b, 4603), None);
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let l = ClientLimiter::new(2, 3600);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.check(ip("2001:db8:1:2::1"), 0).is_ok());
        assert!(l.check(ip("2001:db8:1:2:ffff:ffff:ffff:fffe"), 0).is_ok());
        assert!(l.check(ip("2001:db8:1:2:abcd::9"), 0).is_err(), "the same /64");
        assert!(l.check(ip("2001:db8:1:3::1"), 0).is_ok(), "the next /64");
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }
}
