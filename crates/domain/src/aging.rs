//! The aging period: the minimum number of days between a disconnection and the next activation,
//! per country calling code.

use crate::number::PhoneNumber;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgingPolicy {
    default_days: u32,
    /// (calling code digits, days); the longest matching code wins.
    per_code: Vec<(String, u32)>,
}

impl Default for AgingPolicy {
    /// DESIGN.md's defaults: +1 → 45 days (US), +86 and +91 → 90, everyone else 90.
    fn default() -> Self {
        AgingPolicy::new(90, AgingPolicy::default_codes())
    }
}

impl AgingPolicy {
    /// The per-code defaults: +1 → 45, +86 → 90, +91 → 90.
    pub fn default_codes() -> Vec<(String, u32)> {
        vec![("1".to_string(), 45), ("86".to_string(), 90), ("91".to_string(), 90)]
    }

    pub fn new(default_days: u32, per_code: impl IntoIterator<Item = (String, u32)>) -> AgingPolicy {
        let mut per_code: Vec<(String, u32)> = per_code.into_iter().collect();
        // Longest code first, so the first match is the most specific.
        per_code.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        AgingPolicy { default_days, per_code }
    }

    /// Replaces or adds the period for one calling code (digits without `+`).
    pub fn with_code(mut self, code: &str, days: u32) -> AgingPolicy {
        self.per_code.retain(|(c, _)| c != code);
        self.per_code.push((code.to_string(), days));
        AgingPolicy::new(self.default_days, self.per_code)
    }

    pub fn days_for(&self, n: PhoneNumber) -> u32 {
        let digits = n.digits().to_string();
        self.per_code.iter().find(|(code, _)| digits.starts_with(code.as_str())).map_or(self.default_days, |(_, d)| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_country_code_with_default() {
        let p = AgingPolicy::default();
        let n = |s| PhoneNumber::parse(s).unwrap();
        assert_eq!(p.days_for(n("+12025550123")), 45);
        assert_eq!(p.days_for(n("+8613800138000")), 90);
        assert_eq!(p.days_for(n("+919812345678")), 90);
        assert_eq!(p.days_for(n("+447700900123")), 90);
        let p = p.with_code("44", 30).with_code("1", 60);
        assert_eq!(p.days_for(n("+447700900123")), 30);
        assert_eq!(p.days_for(n("+12025550123")), 60);
    }
}
