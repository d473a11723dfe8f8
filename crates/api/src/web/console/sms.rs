//! The carrier's SMS gateway: where its subscribers' one-time codes go, a new secret, a test message,
//! and how many codes went to its numbers per day (never a code), through `routes::sms`'s functions,
//! as the API does.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::super::{Chrome, Ctx, Lang};
use super::{PostedBy, SignedIn};
use crate::auth::Caller;
use crate::error::ErrorCode;
use crate::routes::sms;
use crate::state::AppState;

/// Days of code counts on the page.
const DAYS_SHOWN: u32 = 30;

/// A day's codes, worded.
pub struct CodesRow {
    pub day: String,
    pub codes: u64,
    pub without_gateway: u64,
}

#[derive(Template)]
#[template(path = "console_sms.html")]
pub(super) struct SmsPage {
    c: Chrome,
    /// The gateway's URL and when it was set.
    gateway: Option<(String, String)>,
    /// A secret just made, shown this once.
    secret: Option<String>,
    /// What is wrong with the URL sent, and the URL as sent.
    url_alert: Option<String>,
    typed_url: String,
    /// A test's outcome (good, words), or what is wrong with the number typed, and the number.
    tested: Option<(bool, String)>,
    number_alert: Option<String>,
    typed_number: String,
    days: Vec<CodesRow>,
    total: u64,
    total_without: u64,
}

/// What a post to the page came to.
#[derive(Default)]
struct Posted {
    secret: Option<String>,
    url_alert: Option<String>,
    typed_url: String,
    tested: Option<(bool, String)>,
    number_alert: Option<String>,
    typed_number: String,
}

async fn sms_page(ctx: &Ctx, caller: &Caller, p: Posted, status: StatusCode) -> Response {
    let (gateway, days) =
        match tokio::try_join!(sms::gateway(&ctx.state, caller), sms::codes_per_day(&ctx.state, caller, DAYS_SHOWN)) {
            Ok(v) => v,
            Err(e) => return ctx.refused_for(caller, e),
        };
    let lang = ctx.lang;
    let tz = &ctx.state.holder.config.time_zone;
    let total = days.iter().map(|d| d.1).sum();
    let total_without = days.iter().map(|d| d.2).sum();
    let days = days
        .into_iter()
        .rev()
        .map(|(d, codes, without_gateway)| CodesRow { day: lang.day(d), codes, without_gateway })
        .collect();
    let page = SmsPage {
        c: ctx.console_chrome("/console/sms", caller, "sms"),
        gateway: gateway.map(|(url, at)| (url, lang.stored_moment(&at, tz))),
        secret: p.secret,
        url_alert: p.url_alert,
        typed_url: p.typed_url,
        tested: p.tested,
        number_alert: p.number_alert,
        typed_number: p.typed_number,
        days,
        total,
        total_without,
    };
    let mut resp = ctx.render(status, page.render());
    // A page holding a secret is never kept by the browser or a proxy.
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    resp
}

/// `GET /console/sms`: the carrier's gateway, its forms, and the codes of the last 30 days.
pub async fn sms_gateway(SignedIn { ctx, caller }: SignedIn) -> Response {
    sms_page(&ctx, &caller, Posted::default(), StatusCode::OK).await
}

/// `POST /console/sms`: sets the gateway at `url` with a new secret, shown this once (the same URL
/// again is a new secret).
pub async fn set_gateway(State(state): State<AppState>, PostedBy { ctx, caller, form }: PostedBy) -> Response {
    let url: String = form.get("url").unwrap_or("").trim().chars().take(2048).collect();
    match sms::set(&state, &caller, &url).await {
        Ok((_, secret)) => {
            sms_page(&ctx, &caller, Posted { secret: Some(secret), ..Posted::default() }, StatusCode::OK).await
        }
        Err(e) if e.code == ErrorCode::InvalidArgument => {
            let posted = Posted { url_alert: Some(ctx.lang.t("sms-url-refused")), typed_url: url, ..Posted::default() };
            sms_page(&ctx, &caller, posted, StatusCode::BAD_REQUEST).await
        }
        Err(e) => ctx.refused_for(&caller, e),
    }
}

fn tested_words(lang: Lang, outcome: sms::TestOutcome) -> (bool, String) {
    match outcome {
        Ok(status) if (200..300).contains(&status) => {
            (true, lang.t_args("sms-test-delivered", &[("status", &status.to_string())]))
        }
        Ok(status) => (false, lang.t_args("sms-test-refused", &[("status", &status.to_string())])),
        Err(why) => (false, lang.t_args("sms-test-failed", &[("why", &why)])),
    }
}

/// `POST /console/sms/test`: a test message to one of the carrier's numbers, now; the page says what
/// the gateway answered.
pub async fn test_gateway(State(state): State<AppState>, PostedBy { ctx, caller, form }: PostedBy) -> Response {
    let typed: String = form.get("number").unwrap_or("").trim().chars().take(40).collect();
    let refused =
        |key: &str| Posted { number_alert: Some(ctx.lang.t(key)), typed_number: typed.clone(), ..Posted::default() };
    let Some(n) = super::super::portal::typed_number(&typed) else {
        return sms_page(&ctx, &caller, refused("number-invalid"), StatusCode::BAD_REQUEST).await;
    };
    match sms::send_test(&state, &caller, n).await {
        Ok(outcome) => {
            let posted =
                Posted { tested: Some(tested_words(ctx.lang, outcome)), typed_number: typed, ..Posted::default() };
            sms_page(&ctx, &caller, posted, StatusCode::OK).await
        }
        Err(e) if e.code == ErrorCode::InvalidArgument => {
            sms_page(&ctx, &caller, refused("sms-test-not-yours"), StatusCode::BAD_REQUEST).await
        }
        Err(e) if e.code == ErrorCode::NotFound => {
            sms_page(&ctx, &caller, refused("sms-none"), StatusCode::CONFLICT).await
        }
        Err(e) => ctx.refused_for(&caller, e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assert_all_worded, test_chrome};
    use super::*;
    use store::Role;

    #[test]
    fn sms_pages_render_in_both_languages() {
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            for i in 0..4 {
                let tested = match i {
                    0 => None,
                    1 => Some(tested_words(lang, Ok(200))),
                    2 => Some(tested_words(lang, Ok(503))),
                    _ => Some(tested_words(lang, Err("refused".into()))),
                };
                let page = SmsPage {
                    c: test_chrome(lang, Role::Carrier),
                    gateway: (i != 0).then(|| ("https://sms.example/numlink".into(), "x".into())),
                    secret: (i == 1).then(|| "whsec_x".into()),
                    url_alert: (i == 2).then(|| lang.t("sms-url-refused")),
                    typed_url: "http://10.0.0.1/".into(),
                    tested,
                    number_alert: (i == 3).then(|| lang.t("sms-test-not-yours")),
                    typed_number: "+8613800138000".into(),
                    days: (0..i).map(|d| CodesRow { day: "x".into(), codes: d, without_gateway: 0 }).collect(),
                    total: 3,
                    total_without: 1,
                };
                pages.push(page.render().unwrap());
            }
            lang.t("sms-none");
        }
        assert_all_worded(&pages);
    }
}
