//! The institution's webhook endpoints: the list, one endpoint with its delivery log, and what can be
//! done to it (add, send a test event, replay a delivery, enable again, a new secret, delete), each
//! through `crate::endpoints`, as the API does.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::super::forms::Form;
use super::super::{Chrome, Ctx, Lang, see_other};
use super::{PostedBy, SignedIn};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Deliveries shown on one page of an endpoint's log.
const LOG_PAGE_ROWS: u32 = 50;

/// An endpoint on the institution's page.
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    /// Why it is disabled, worded by numlink.
    pub disabled_reason: Option<String>,
    pub created: String,
    /// Until when the secret before the last rotation still signs.
    pub previous_until: Option<String>,
    /// How notifications are sent to it: one a request, or up to so many in a batch.
    pub sent: String,
}

#[derive(Template)]
#[template(path = "console_endpoints.html")]
pub(super) struct EndpointsPage {
    c: Chrome,
    rows: Vec<EndpointRow>,
    /// A secret just made, shown this once: (the endpoint's URL, the secret).
    secret: Option<(String, String)>,
    /// What is wrong with the URL sent (the API's own words), and the URL as sent.
    alert: Option<String>,
    typed: String,
    notice: Option<String>,
    /// The batch the form offers: the most events a request may carry, and its words.
    batch_max: u32,
    batch_many: String,
}

/// How notifications are sent to an endpoint, in words.
fn sent_words(lang: Lang, batch_events: u32) -> String {
    if batch_events <= 1 {
        lang.t("endpoint-batch-one")
    } else {
        lang.t_args("endpoint-batch-many", &[("n", &batch_events.to_string())])
    }
}

async fn endpoints_page(
    ctx: &Ctx,
    caller: &Caller,
    secret: Option<(String, String)>,
    refused: Option<(String, String)>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let list = match crate::endpoints::list(&ctx.state, caller).await {
        Ok(l) => l,
        Err(e) => return ctx.refused_for(caller, e),
    };
    let lang = ctx.lang;
    let tz = &ctx.state.holder.config.time_zone;
    let now = ctx.state.store.clock().now().as_second();
    let rows = list
        .into_iter()
        .map(|e| EndpointRow {
            created: lang.stored_moment(&e.created_at, tz),
            previous_until: e.previous_secret_until.filter(|&u| u > now).map(|u| lang.moment(u, tz)),
            id: e.id.to_string(),
            url: e.url,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            sent: sent_words(lang, e.batch_events),
        })
        .collect();
    let (alert, typed) = refused.map_or((None, String::new()), |(a, t)| (Some(a), t));
    let html = EndpointsPage {
        c: ctx.console_chrome("/console/endpoints", caller, "endpoints"),
        rows,
        secret,
        alert,
        typed,
        notice,
        batch_max: workers::webhooks::BATCH_EVENTS_MAX,
        batch_many: sent_words(lang, workers::webhooks::BATCH_EVENTS_MAX),
    }
    .render();
    let mut resp = ctx.render(status, html);
    // A page holding a secret is never kept by the browser or a proxy (every page is no-store already).
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    resp
}

/// `GET /console/endpoints[?deleted=1]`: the institution's webhook endpoints.
pub async fn endpoints(SignedIn { ctx, caller }: SignedIn, RawQuery(query): RawQuery) -> Response {
    let notice = Form::of_query(query.as_deref()).get("deleted").map(|_| ctx.lang.t("endpoint-deleted"));
    endpoints_page(&ctx, &caller, None, None, notice, StatusCode::OK).await
}

/// `POST /console/endpoints`: registers an endpoint; the page shows its secret this once.
pub async fn add_endpoint(State(state): State<AppState>, PostedBy { ctx, caller, form }: PostedBy) -> Response {
    let url: String = form.get("url").unwrap_or("").trim().chars().take(2048).collect();
    // The form offers 1 or the most; anything else sent is refused by `endpoints::add` as the API's is.
    let batch_events = form.get("batchEvents").map(|v| v.trim().parse::<u32>().unwrap_or(0));
    match crate::endpoints::add(&state, &caller, &url, batch_events).await {
        Ok((e, secret)) => endpoints_page(&ctx, &caller, Some((e.url, secret)), None, None, StatusCode::CREATED).await,
        Err(e) if e.code == ErrorCode::InvalidArgument || e.code == ErrorCode::TooManyItems => {
            let max = state.limits.webhook_endpoints_max.to_string();
            let alert = ctx.lang.t_args("endpoint-refused", &[("max", &max)]);
            endpoints_page(&ctx, &caller, None, Some((alert, url)), None, StatusCode::BAD_REQUEST).await
        }
        Err(e) => ctx.refused_for(&caller, e),
    }
}

/// `POST /console/endpoints/{id}/rotate`: a new secret, shown this once; the previous one signs too
/// for a while, so the receiver can change over.
pub async fn rotate_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    match crate::endpoints::rotate(&state, &caller, &id).await {
        Ok((e, secret)) => endpoints_page(&ctx, &caller, Some((e.url, secret)), None, None, StatusCode::OK).await,
        Err(e) => ctx.refused_for(&caller, e),
    }
}

#[derive(Template)]
#[template(path = "console_endpoint_delete.html")]
pub(super) struct DeleteEndpointPage {
    c: Chrome,
    id: String,
    url: String,
}

/// `GET /console/endpoints/{id}/delete`: asks to confirm; `POST` deletes the endpoint and its pending
/// deliveries.
pub async fn confirm_delete_endpoint(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let e = match crate::endpoints::get(&state, &caller, &id).await {
        Ok(e) => e,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let html = DeleteEndpointPage { c: ctx.console_chrome("/console/endpoints", &caller, "endpoints"), id, url: e.url }
        .render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /console/endpoints/{id}/delete`: deletes it.
pub async fn delete_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    match crate::endpoints::delete(&state, &caller, &id).await {
        Ok(()) => see_other("/console/endpoints?deleted=1"),
        Err(e) => ctx.refused_for(&caller, e),
    }
}

/// A delivery in an endpoint's log, worded.
pub struct LogRow {
    pub notification: String,
    pub kind: String,
    pub created: String,
    /// `pending`, `delivered` or `failed`, for the style, and in words.
    pub state: &'static str,
    pub state_words: String,
    pub attempts: u32,
    pub status: Option<u16>,
    /// The next attempt while pending, or what went wrong.
    pub detail: Option<String>,
}

#[derive(Template)]
#[template(path = "console_endpoint.html")]
pub(super) struct EndpointPage {
    c: Chrome,
    e: EndpointRow,
    log: Vec<LogRow>,
    /// The link to older deliveries, when there are more.
    older: Option<String>,
    notice: Option<String>,
    alert: Option<String>,
}

fn state_words(lang: Lang, state: &str) -> (&'static str, String) {
    let (s, key) = match state {
        "delivered" => ("delivered", "delivery-delivered"),
        "failed" => ("failed", "delivery-failed"),
        _ => ("pending", "delivery-pending"),
    };
    (s, lang.t(key))
}

/// `GET /console/endpoints/{id}[?after=&done=]`: one endpoint, its actions, and its delivery log,
/// newest first.
pub async fn endpoint(
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Form::of_query(query.as_deref());
    let notice = match q.get("done") {
        Some("tested") => Some(ctx.lang.t("endpoint-tested")),
        Some("replayed") => Some(ctx.lang.t("endpoint-replayed")),
        Some("enabled") => Some(ctx.lang.t("endpoint-enabled-notice")),
        _ => None,
    };
    let after = q.get("after").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0);
    endpoint_page(&ctx, &caller, &id, after, notice, None, StatusCode::OK).await
}

async fn endpoint_page(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    after: Option<i64>,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Response {
    let (e, rows) = match crate::endpoints::deliveries(&ctx.state, caller, id, after, LOG_PAGE_ROWS).await {
        Ok(v) => v,
        Err(e) => return ctx.refused_for(caller, e),
    };
    let lang = ctx.lang;
    let tz = &ctx.state.holder.config.time_zone;
    let now = ctx.state.store.clock().now().as_second();
    let older = (rows.len() == LOG_PAGE_ROWS as usize)
        .then(|| rows.last().map(|d| format!("/console/endpoints/{id}?after={}", d.seq)))
        .flatten();
    let log = rows
        .into_iter()
        .map(|d| {
            let (state, state_words) = state_words(lang, &d.state);
            let detail = match d.next_attempt_at {
                Some(at) => Some(lang.t_args("delivery-next", &[("when", &lang.moment(at, tz))])),
                None => d.last_error,
            };
            LogRow {
                notification: d.notification_id.to_string(),
                kind: super::kind_words(lang, d.kind),
                created: lang.stored_moment(&d.created_at, tz),
                state,
                state_words,
                attempts: d.attempts,
                status: d.last_status,
                detail,
            }
        })
        .collect();
    let e = EndpointRow {
        created: lang.stored_moment(&e.created_at, tz),
        previous_until: e.previous_secret_until.filter(|&u| u > now).map(|u| lang.moment(u, tz)),
        id: e.id.to_string(),
        url: e.url,
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        sent: sent_words(lang, e.batch_events),
    };
    let back = format!("/console/endpoints/{}", e.id);
    let html =
        EndpointPage { c: ctx.console_chrome(&back, caller, "endpoints"), e, log, older, notice, alert }.render();
    ctx.render(status, html)
}

/// What an action on an endpoint's page came to: on to its page saying so, or the page again saying
/// why not (a disabled endpoint), or the refusal.
async fn after_action(ctx: &Ctx, caller: &Caller, id: &str, outcome: Result<(), ApiError>, done: &str) -> Response {
    match outcome {
        Ok(()) => see_other(&format!("/console/endpoints/{id}?done={done}")),
        Err(e) if e.code == ErrorCode::Conflict => {
            let alert = Some(ctx.lang.t("endpoint-is-disabled"));
            endpoint_page(ctx, caller, id, None, None, alert, StatusCode::CONFLICT).await
        }
        Err(e) => ctx.refused_for(caller, e),
    }
}

/// `POST /console/endpoints/{id}/test`: sends a test event to the endpoint alone.
pub async fn test_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    let outcome = crate::endpoints::test(&state, &caller, &id).await.map(|_| ());
    after_action(&ctx, &caller, &id, outcome, "tested").await
}

/// `POST /console/endpoints/{id}/deliveries/{notification}/replay`: one delivery again, from the
/// first attempt.
pub async fn replay_delivery(
    State(state): State<AppState>,
    Path((id, notification)): Path<(String, String)>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    let outcome = crate::endpoints::replay(&state, &caller, &id, &notification).await;
    after_action(&ctx, &caller, &id, outcome, "replayed").await
}

/// `POST /console/endpoints/{id}/enable`: enables a disabled endpoint again.
pub async fn enable_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, .. }: PostedBy,
) -> Response {
    let outcome = crate::endpoints::enable(&state, &caller, &id).await.map(|_| ());
    after_action(&ctx, &caller, &id, outcome, "enabled").await
}

#[cfg(test)]
mod tests {
    use super::super::{assert_all_worded, test_chrome};
    use super::*;
    use store::Role;

    /// The endpoint pages in every state, in both languages.
    #[test]
    fn endpoint_pages_render_in_both_languages() {
        let utc = jiff::tz::TimeZone::UTC;
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            let row = |i: usize| EndpointRow {
                id: format!("whe_{i}"),
                url: "https://bank.example/hook".into(),
                enabled: i == 1,
                disabled_reason: Some("failing for 5 days".into()),
                created: lang.moment(0, &utc),
                previous_until: Some(lang.moment(0, &utc)),
                sent: sent_words(lang, if i == 1 { 100 } else { 1 }),
            };
            for (rows, secret, refused) in [(0, false, true), (1, true, false), (2, false, false)] {
                let page = EndpointsPage {
                    c: test_chrome(lang, Role::Institution),
                    rows: (0..rows).map(row).collect(),
                    secret: secret.then(|| ("https://bank.example/hook".into(), "whsec_x".into())),
                    alert: refused.then(|| lang.t_args("endpoint-refused", &[("max", "10")])),
                    typed: "http://10.0.0.1/".into(),
                    notice: Some(lang.t("endpoint-deleted")),
                    batch_max: 100,
                    batch_many: sent_words(lang, 100),
                };
                pages.push(page.render().unwrap());
            }
            let page = DeleteEndpointPage {
                c: test_chrome(lang, Role::Institution),
                id: "whe_0".into(),
                url: "https://bank.example/hook".into(),
            };
            pages.push(page.render().unwrap());
            for (i, notice) in ["endpoint-tested", "endpoint-replayed", "endpoint-enabled-notice"].iter().enumerate() {
                let log = ["pending", "delivered", "failed"]
                    .iter()
                    .zip(store::NotificationType::ALL)
                    .map(|(s, kind)| {
                        let (state, state_words) = state_words(lang, s);
                        LogRow {
                            notification: "ntf_0".into(),
                            kind: super::super::kind_words(lang, kind),
                            created: lang.moment(0, &utc),
                            state,
                            state_words,
                            attempts: 3,
                            status: Some(503),
                            detail: Some(lang.t_args("delivery-next", &[("when", "x")])),
                        }
                    })
                    .take(i * 2)
                    .collect();
                let page = EndpointPage {
                    c: test_chrome(lang, Role::Institution),
                    e: row(i % 2),
                    log,
                    older: (i == 1).then(|| "/console/endpoints/whe_0?after=9".into()),
                    notice: Some(lang.t(notice)),
                    alert: Some(lang.t("endpoint-is-disabled")),
                };
                pages.push(page.render().unwrap());
            }
        }
        assert_all_worded(&pages);
    }
}
