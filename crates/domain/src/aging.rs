//! Days per country calling code: the aging period (the minimum number of days between a
//! disconnection and the next activation) and the unbind deadline (working days) are both set this way.

use crate::number::PhoneNumber;

/// A number of days per country calling code, with a default for the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaysByCallingCode {
    default_days: u32,
    /// (calling code digits, days); the longest matching code wins.
    per_code: Vec<(String, u32)>,
}

/// The aging period per calling code.
pub type AgingPolicy = DaysByCallingCode;

impl DaysByCallingCode {
    /// DESIGN.md's aging periods: +1 → 45 days (US), +86 and +91 → 90, everyone else 90.
    pub fn aging_default() -> AgingPolicy {
        AgingPolicy::new(90, AgingPolicy::default_codes())
    }

    /// The per-code aging defaults: +1 → 45, +86 → 90, +91 → 90.
    pub fn default_codes() -> Vec<(String, u32)> {
        vec![("1".to_string(), 45), ("86".to_string(), 90), ("91".to_string(), 90)]
    }

    pub fn new(default_days: u32, per_code: impl IntoIterator<Item = (String, u32)>) -> DaysByCallingCode {
        let mut per_code: Vec<(String, u32)> = per_code.into_iter().collect();
        // Longest code first, so the first match is the most specific.
        per_code.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        DaysByCallingCode { default_days, per_code }
    }

    /// Replaces or adds the period for one calling code (digits without `+`).
    pub fn with_code(mut self, code: &str, days: u32) -> DaysByCallingCode {
        self.per_code.retain(|(c, _)| c != code);
        self.per_code.push((code.to_string(), days));
        DaysByCallingCode::new(self.default_days, self.per_code)
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
        let p = AgingPolicy::aging_default();
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
