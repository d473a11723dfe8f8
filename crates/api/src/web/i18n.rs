//! The pages' two languages: which one a request gets (a `lang` cookie set by the visible switch, else
//! `Accept-Language`, else Simplified Chinese), the message catalogues (Project Fluent, one `.ftl` file
//! per language in `crates/api/locales/`, compiled into the binary), and dates in each language's own
//! form. No page string is written in code.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// A language the pages speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

/// The catalogues, as compiled in: (language, its `.ftl` source).
pub const CATALOGUES: [(Lang, &str); 2] = [
    (Lang::ZhCn, include_str!("../../locales/zh-CN/portal.ftl")),
    (Lang::En, include_str!("../../locales/en/portal.ftl")),
];

impl Lang {
    /// The BCP 47 tag: the `lang` attribute, the cookie, the switch's link.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// A tag numlink speaks, in any case, or a language of it ("zh-Hans-CN", "en-GB").
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: the switch's cookie if it names one, else the first language of
    /// `Accept-Language` (by weight) numlink speaks, else Simplified Chinese.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = cookie.and_then(Lang::from_tag) {
            return lang;
        }
        let mut offered: Vec<(f32, usize, Lang)> = accept_language
            .unwrap_or("")
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        offered.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offered.first().map_or(Lang::ZhCn, |o| o.2)
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        static BUNDLES: OnceLock<Vec<FluentBundle<FluentResource>>> = OnceLock::new();
        let bundles = BUNDLES.get_or_init(|| {
            CATALOGUES
                .iter()
                .map(|(lang, source)| {
                    let id: LanguageIdentifier = lang.tag().parse().expect("a valid language tag");
                    let mut bundle = FluentBundle::new_concurrent(vec![id]);
                    // Unicode isolation marks would show in text copied from a page.
                    bundle.set_use_isolating(false);
                    let resource =
                        FluentResource::try_new(source.to_string()).expect("the catalogues parse (a test checks)");
                    bundle.add_resource(resource).expect("no message is defined twice (a test checks)");
                    bundle
                })
                .collect()
        });
        &bundles[CATALOGUES.iter().position(|(l, _)| *l == self).expect("every language has a catalogue")]
    }

    /// The message `id` in this language, with `args`. A missing message shows as its id (and a test
    /// fails), never as an empty place.
    pub fn t_args(self, id: &str, args: &[(&str, &str)]) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = self.tag(), "a page asked for a message no catalogue has");
            #[cfg(test)]
            tests::MISSING.with_borrow_mut(|m| m.push(format!("{}: {id}", self.tag())));
            return id.to_string();
        };
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            // A count is a number, so that plural forms are chosen by it; anything else stays text (a
            // phone number is not a quantity to group).
            match v.parse::<u32>() {
                Ok(n) if !v.starts_with('+') => fluent_args.set(*k, n),
                _ => fluent_args.set(*k, v.to_string()),
            }
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, (!args.is_empty()).then_some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            tracing::error!(id, lang = self.tag(), ?errors, "a message did not format");
            #[cfg(test)]
            tests::MISSING.with_borrow_mut(|m| m.push(format!("{}: {id}: {errors:?}", self.tag())));
        }
        text.into_owned()
    }

    pub fn t(self, id: &str) -> String {
        self.t_args(id, &[])
    }

    /// A day in this language's own form: "7 December 2026", "2026年12月7日".
    pub fn day(self, day: domain::Day) -> String {
        let d = day.date();
        match self {
            Lang::ZhCn => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
            Lang::En => {
                const MONTHS: [&str; 12] = [
                    "January",
                    "February",
                    "March",
                    "April",
                    "May",
                    "June",
                    "July",
                    "August",
                    "September",
                    "October",
                    "November",
                    "December",
                ];
                format!("{} {} {}", d.day(), MONTHS[d.month() as usize - 1], d.year())
            }
        }
    }

    /// A moment (unix seconds) as a day and a time of day in the time zone `tz` (the portal's
    /// `time_zone`), with its offset from UTC: "7 December 2026, 22:03 UTC+8".
    pub fn moment(self, unix: i64, tz: &jiff::tz::TimeZone) -> String {
        let Ok(t) = jiff::Timestamp::from_second(unix) else { return unix.to_string() };
        let z = t.to_zoned(tz.clone());
        let date = self.day(domain::Day::from_date(z.date()));
        let time = format!("{:02}:{:02}", z.hour(), z.minute());
        let secs = z.offset().seconds();
        let zone = match (secs / 3600, (secs.abs() % 3600) / 60) {
            (0, 0) => "UTC".to_string(),
            (h, 0) => format!("UTC{h:+}"),
            (h, m) => format!("UTC{}{}:{m:02}", if secs < 0 { '-' } else { '+' }, h.abs()),
        };
        self.t_args("moment-zoned", &[("date", &date), ("time", &time), ("zone", &zone)])
    }
}

impl Lang {
    /// A moment as the tables write it (RFC 3339), worded as `moment`; the text itself if it is not one.
    pub fn stored_moment(self, rfc3339: &str, tz: &jiff::tz::TimeZone) -> String {
        rfc3339.parse::<jiff::Timestamp>().map_or_else(|_| rfc3339.to_string(), |t| self.moment(t.as_second(), tz))
    }
}

/// The ids of the messages a catalogue defines, in its order.
pub fn message_ids(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once('=').map(|(id, _)| id.trim().to_string()))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// The messages this test's thread asked for that no catalogue has, or that did not format (an
        /// argument missing): the pages' test renders every page and state and expects none.
        pub(crate) static MISSING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    #[test]
    fn every_message_is_in_both_languages() {
        let ids: Vec<Vec<String>> = CATALOGUES.iter().map(|(_, s)| message_ids(s)).collect();
        for (i, (lang, source)) in CATALOGUES.iter().enumerate() {
            FluentResource::try_new(source.to_string()).unwrap_or_else(|_| panic!("{} does not parse", lang.tag()));
            for (j, (other, _)) in CATALOGUES.iter().enumerate().filter(|(j, _)| *j != i) {
                let missing: Vec<&String> = ids[i].iter().filter(|id| !ids[j].contains(id)).collect();
                assert!(missing.is_empty(), "in {} but not in {}: {missing:?}", lang.tag(), other.tag());
            }
            let mut sorted = ids[i].clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), ids[i].len(), "a message defined twice in {}", lang.tag());
            for id in &ids[i] {
                assert_ne!(lang.t(id), *id, "{id} does not format in {}", lang.tag());
            }
        }
        assert!(ids[0].len() > 10);
    }

    #[test]
    fn the_language_is_the_cookies_then_the_browsers_then_chinese() {
        // (cookie, Accept-Language, language)
        let table = [
            (None, None, Lang::ZhCn),
            (None, Some("en-US,en;q=0.9"), Lang::En),
            (None, Some("fr-FR, de;q=0.8"), Lang::ZhCn),
            (None, Some("fr;q=0.9, en;q=0.5, zh-CN;q=0.8"), Lang::ZhCn),
            (None, Some("zh-Hans-CN;q=0.4, en-GB;q=0.7"), Lang::En),
            (None, Some("en;q=0, zh-TW"), Lang::ZhCn),
            (Some("en"), Some("zh-CN"), Lang::En),
            (Some("zh-CN"), Some("en"), Lang::ZhCn),
            (Some("klingon"), Some("en"), Lang::En),
        ];
        for (cookie, accept, want) in table {
            assert_eq!(Lang::negotiate(cookie, accept), want, "cookie {cookie:?}, Accept-Language {accept:?}");
        }
    }

    #[test]
    fn dates_are_in_each_languages_form() {
        let day = domain::Day::parse("2026-12-07").unwrap();
        assert_eq!(Lang::En.day(day), "7 December 2026");
        assert_eq!(Lang::ZhCn.day(day), "2026年12月7日");
        let unix = "2026-12-07T14:03:59Z".parse::<jiff::Timestamp>().unwrap().as_second();
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(Lang::En.moment(unix, &utc), "7 December 2026, 14:03 UTC");
        assert_eq!(Lang::ZhCn.moment(unix, &utc), "2026年12月7日 14:03（UTC）");
        let beijing = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
        assert_eq!(Lang::ZhCn.moment(unix, &beijing), "2026年12月7日 22:03（UTC+8）", "the next day's date if need be");
        let late = "2026-12-07T20:03:59Z".parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(Lang::ZhCn.moment(late, &beijing), "2026年12月8日 04:03（UTC+8）");
        let delhi = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
        assert_eq!(Lang::En.moment(unix, &delhi), "7 December 2026, 19:33 UTC+5:30");
        let brasilia = jiff::tz::TimeZone::fixed(jiff::tz::offset(-3));
        assert_eq!(Lang::En.moment(unix, &brasilia), "7 December 2026, 11:03 UTC-3");
    }
}
