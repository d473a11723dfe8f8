//! The consoles at `/console`: a participant (an institution, a carrier, the regulator) signs in with
//! its API key, which is exchanged for a server-side session (`store` keeps the token's hash; the
//! browser an `HttpOnly`, `SameSite=Strict` cookie). A session ends after `console_idle_secs` without a
//! request, at sign-out, or when its key is revoked (read from the tables at every request).
//!
//! Every page and action authorises exactly as its API route does: the session gives the same
//! `Caller` a key gives, and the page calls the same function as the route (`crate::unbind`), whose
//! `ApiError` becomes a page. A page about another's object says only that none of the caller's has
//! that id, as the API's 404 does.

use askama::Template;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::RejectReason;
use store::{Role, UnbindRequest, UnbindState};

use super::forms::{Csrf, Form, NotAForm};
use super::{Chrome, Ctx, Lang, VerifyOutcome, check_proof_at, see_other};
use crate::admit::ClientAddr;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::unbind;

mod bindings;
mod charts;
mod endpoints;
pub use bindings::{bindings, confirm_delete_binding, delete_binding};
mod files;
mod sms;
pub use endpoints::{
    add_endpoint, confirm_delete_endpoint, delete_endpoint, enable_endpoint, endpoint, endpoints, replay_delivery,
    rotate_endpoint, test_endpoint,
};
pub use files::{answers, files, job, job_progress, rejections, upload};
pub use sms::{set_gateway, sms_gateway, test_gateway};

/// The console session's cookie.
const CONSOLE_COOKIE: &str = "nl_console";
/// Characters of a pasted API key looked at (a key is 52).
const KEY_CHARS_MAX: usize = 128;
/// Open requests listed on the queue (the most urgent), and answered ones (the newest).
const QUEUE_OPEN_MAX: u32 = 5_000;
const QUEUE_ANSWERED_MAX: u32 = 200;
/// Where a refused console form leads back to.
const CONSOLE_HOME: (&str, &str) = ("/console", "action-console-home");

/// A console request of the participant signed in: the page's frame and the API's `Caller`. Without
/// a session, or with one that ended, the extractor answers the sign-in page instead (`Ctx::caller`).
pub struct SignedIn {
    pub ctx: Ctx,
    pub caller: Caller,
}

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = Ctx::new(state, &parts.headers);
        let caller = ctx.caller(&parts.headers).await?;
        Ok(SignedIn { ctx, caller })
    }
}

/// A form posted by the participant signed in, its CSRF token good; otherwise the extractor answers
/// the page that says why (`Ctx::posted_by`: the form and its token first, then the session).
pub struct PostedBy {
    pub ctx: Ctx,
    pub caller: Caller,
    pub form: Form,
}

impl axum::extract::FromRequest<AppState> for PostedBy {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let ctx = Ctx::new(state, &headers);
        let form = <Form as axum::extract::FromRequest<AppState>>::from_request(req, state).await;
        let (caller, form) = ctx.posted_by(&headers, form).await?;
        Ok(PostedBy { ctx, caller, form })
    }
}

impl Ctx {
    /// The frame of a console page, with the participant's name and role for the navigation.
    fn console_chrome(&self, back: &str, caller: &Caller, current: &'static str) -> Chrome {
        Chrome { console: Some((caller.0.name.clone(), caller.0.role)), ..self.chrome(back, None, current) }
    }

    /// The participant signed in, as the API's `Caller`, or the page to answer instead: the sign-in
    /// page without a session, and with one that ended, the sign-in page saying so (the cookie is
    /// removed).
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Response> {
        let Some(token) = self.cookies.get(headers, CONSOLE_COOKIE) else { return Err(see_other("/console")) };
        match self.state.store.console_session(token.to_string(), self.state.limits.console_idle_secs).await {
            Ok(Some(p)) => Ok(Caller(p)),
            Ok(None) => {
                let mut resp = see_other("/console?ended=1");
                resp.headers_mut().append(header::SET_COOKIE, self.cookies.clear(CONSOLE_COOKIE));
                Err(resp)
            }
            Err(e) => Err(self.api_refused(e.into())),
        }
    }

    /// How a page words an API refusal: its status, its message key, and the way on. Another's object
    /// and no object are the same page, as in the API.
    fn refusal(e: &ApiError) -> (StatusCode, &'static str, (&'static str, &'static str)) {
        let (key, back) = match e.code {
            ErrorCode::NotFound => ("console-not-found", CONSOLE_HOME),
            ErrorCode::PermissionDenied => ("console-not-for-role", CONSOLE_HOME),
            ErrorCode::Conflict => ("console-answered-before", ("/console/requests", "action-console-requests")),
            ErrorCode::InvalidArgument => ("bad-form", CONSOLE_HOME),
            _ => {
                tracing::error!(code = e.code.as_str(), message = %e.message, "a console page could not be served");
                ("unavailable", ("/console", "action-try-again"))
            }
        };
        (e.code.status(), key, back)
    }

    /// A form posted by the participant signed in, with its CSRF token good; or the page to answer
    /// instead.
    async fn posted_by(&self, headers: &HeaderMap, form: Result<Form, NotAForm>) -> Result<(Caller, Form), Response> {
        let form = self.posted_from(headers, form, CONSOLE_HOME)?;
        Ok((self.caller(headers).await?, form))
    }

    /// The page for an API refusal, before anyone is signed in.
    fn api_refused(&self, e: ApiError) -> Response {
        let (status, key, back) = Ctx::refusal(&e);
        self.problem(status, key, back)
    }

    /// The page for an API refusal, in the console's frame of the participant signed in.
    fn refused_for(&self, caller: &Caller, e: ApiError) -> Response {
        let (status, key, back) = Ctx::refusal(&e);
        self.problem_in(self.console_chrome("/console", caller, ""), status, key, back)
    }
}

/// Where a participant's console begins.
fn home(role: Role) -> &'static str {
    match role {
        Role::Institution => "/console/requests",
        Role::Regulator => "/console/report",
        Role::Carrier | Role::Portability => "/console/home",
    }
}

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage {
    c: Chrome,
    /// What went wrong, worded.
    error: Option<String>,
    /// Why the last session ended, worded.
    notice: Option<String>,
}

/// `GET /console[?ended=1]`: the sign-in form, or on to the participant's console when signed in.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let ctx = Ctx::new(&state, &headers);
    if let Some(token) = ctx.cookies.get(&headers, CONSOLE_COOKIE)
        && let Ok(Some(p)) = state.store.console_session(token.to_string(), state.limits.console_idle_secs).await
    {
        return see_other(home(p.role));
    }
    let minutes = (state.limits.console_idle_secs.max(1) as u64).div_ceil(60).to_string();
    let notice = Form::of_query(query.as_deref())
        .get("ended")
        .map(|_| ctx.lang.t_args("console-ended-notice", &[("minutes", &minutes)]));
    let html = SignInPage { c: ctx.chrome("/console", None, ""), error: None, notice }.render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /console/sign-in`: the API key, exchanged for a session. A client address that sent too many
/// wrong keys this hour is refused until the hour is over, whatever it sends (keys are not guessable,
/// but a flood of guesses is still work, and a sign of something wrong).
pub async fn sign_in(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form, NotAForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let form = match ctx.posted_from(&headers, form, CONSOLE_HOME) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let client_ip = client.map(|Extension(ClientAddr(ip))| ip);
    let now = state.store.clock().now().as_second();
    let over = match client_ip {
        Some(ip) => state.sign_in_failures.over(&state.store, ip).await,
        None => Ok(None),
    };
    let over = match over {
        Ok(over) => over,
        Err(e) => return ctx.api_refused(e.into()),
    };
    if let Some(retry) = over {
        let when = ctx.lang.moment(now + retry, &state.holder.config.time_zone);
        let error = ctx.lang.t_args("console-too-many-failures", &[("when", &when)]);
        let html = SignInPage { c: ctx.chrome("/console", None, ""), error: Some(error), notice: None }.render();
        return ctx.render(StatusCode::TOO_MANY_REQUESTS, html);
    }
    let key: String = form.get("key").unwrap_or("").trim().chars().take(KEY_CHARS_MAX + 1).collect();
    // A key is looked up (a read) before anything is written: a flood of wrong keys costs no write.
    let known =
        if key.is_empty() || key.len() > KEY_CHARS_MAX { Ok(None) } else { state.store.authenticate(&key).await };
    let opened = match known {
        Ok(Some(_)) => {
            // A session this browser had ends with the new one.
            if let Some(old) = ctx.cookies.get(&headers, CONSOLE_COOKIE)
                && let Err(e) = state.store.close_console_session(old.to_string()).await
            {
                return ctx.api_refused(e.into());
            }
            state.store.open_console_session(key, state.limits.console_idle_secs).await
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match opened {
        Ok(Some((token, p))) => {
            let mut resp = see_other(home(p.role));
            let h = resp.headers_mut();
            h.append(header::SET_COOKIE, ctx.cookies.set(CONSOLE_COOKIE, &token, None));
            h.extend(Csrf::renewed().cookie(ctx.cookies).map(|c| (header::SET_COOKIE, c)));
            resp
        }
        Ok(None) => {
            if let Some(ip) = client_ip
                && let Err(e) = state.sign_in_failures.check(&state.store, ip).await
            {
                return ctx.api_refused(e.into());
            }
            let error = Some(ctx.lang.t("console-key-refused"));
            let html = SignInPage { c: ctx.chrome("/console", None, ""), error, notice: None }.render();
            ctx.render(StatusCode::UNAUTHORIZED, html)
        }
        Err(e) => ctx.api_refused(e.into()),
    }
}

/// `POST /console/sign-out`: ends the session.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    if let Err(page) = ctx.posted_from(&headers, form, CONSOLE_HOME) {
        return page;
    }
    if let Some(token) = ctx.cookies.get(&headers, CONSOLE_COOKIE)
        && let Err(e) = state.store.close_console_session(token.to_string()).await
    {
        return ctx.api_refused(e.into());
    }
    let mut resp = see_other("/console");
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, ctx.cookies.clear(CONSOLE_COOKIE));
    h.extend(Csrf::renewed().cookie(ctx.cookies).map(|c| (header::SET_COOKIE, c)));
    resp
}

/// An event a carrier reported, worded: (date, kind, its event id, a port's recipient).
type ReportedRow = (String, String, String, Option<String>);

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage {
    c: Chrome,
    ranges: Vec<String>,
    reporting_since: Option<String>,
    /// The number looked up, as typed, and what is wrong with it.
    typed: String,
    alert: Option<String>,
    /// The events the carrier reported for the number looked up.
    events: Option<Vec<ReportedRow>>,
}

/// `GET /console/home[?number=]`: a carrier's console: its ranges and reporting start, and the events
/// it reported for a number (never another carrier's).
pub async fn role_home(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let me = match crate::lifecycle::profile(&state, &caller).await {
        Ok(p) => p,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let lang = ctx.lang;
    let typed: String = Form::of_query(query.as_deref()).get("number").unwrap_or("").trim().chars().take(40).collect();
    let (events, alert) = if typed.is_empty() {
        (None, None)
    } else {
        match super::portal::typed_number(&typed) {
            None => (None, Some(lang.t("number-invalid"))),
            Some(n) => match crate::lifecycle::reported(&state, &caller, n).await {
                Ok(events) => (
                    Some(
                        events
                            .into_iter()
                            .map(|e| {
                                let kind = lang.t(&format!("event-kind-{}", e.kind.as_str().replace('_', "-")));
                                (lang.day(e.date), kind, e.event_id, e.recipient_id)
                            })
                            .collect(),
                    ),
                    None,
                ),
                Err(e) => return ctx.refused_for(&caller, e),
            },
        }
    };
    let status = if alert.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let html = HomePage {
        c: ctx.console_chrome("/console/home", &caller, "home"),
        ranges: me.prefixes.iter().map(|p| p.to_string()).collect(),
        reporting_since: me.reporting_since.map(|d| lang.day(d)),
        typed,
        alert,
        events,
    }
    .render();
    ctx.render(status, html)
}

/// A request on the institution's pages.
pub struct QueueRow {
    pub id: String,
    /// `open`, `overdue`, `unbound` or `rejected`.
    pub state: &'static str,
    pub state_text: String,
    pub deadline: String,
    /// How long is left, or how late it is (open requests only).
    pub left: Option<String>,
    pub asked: String,
    pub accounts: usize,
}

impl QueueRow {
    fn new(lang: Lang, tz: &jiff::tz::TimeZone, r: &UnbindRequest, accounts: usize, today: domain::Day) -> QueueRow {
        let state = match r.state {
            UnbindState::Open if r.overdue(today) => "overdue",
            UnbindState::Open => "open",
            UnbindState::Unbound => "unbound",
            UnbindState::Rejected => "rejected",
        };
        let days = (r.deadline.date() - today.date()).get_days();
        let left = (r.state == UnbindState::Open).then(|| match days {
            0 => lang.t("console-due-today"),
            d if d > 0 => lang.t_args("console-days-left", &[("days", &d.to_string())]),
            d => lang.t_args("console-days-late", &[("days", &(-d).to_string())]),
        });
        QueueRow {
            id: r.id.to_string(),
            state,
            state_text: lang.t(&format!("console-state-{state}")),
            deadline: lang.day(r.deadline),
            left,
            asked: lang.moment(r.created_unix, tz),
            accounts,
        }
    }
}

#[derive(Template)]
#[template(path = "console_requests.html")]
struct QueuePage {
    c: Chrome,
    open: Vec<QueueRow>,
    answered: Vec<QueueRow>,
    /// Said when more are open than listed.
    more: Option<String>,
}

/// `GET /console/requests`: the institution's unbind requests, the open ones by deadline (the most
/// urgent first, overdue marked), then those answered, newest first.
pub async fn queue(State(state): State<AppState>, SignedIn { ctx, caller }: SignedIn) -> Response {
    let queue = match unbind::queue(&state, &caller, QUEUE_OPEN_MAX, QUEUE_ANSWERED_MAX).await {
        Ok(q) => q,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let today = state.store.today();
    let tz = &state.holder.config.time_zone;
    let row = |(r, accounts): &(UnbindRequest, u32)| QueueRow::new(ctx.lang, tz, r, *accounts as usize, today);
    let more = (queue.open_total > queue.open.len() as u64).then(|| {
        let shown = queue.open.len().to_string();
        ctx.lang.t_args("console-open-more", &[("shown", &shown), ("total", &queue.open_total.to_string())])
    });
    let html = QueuePage {
        c: ctx.console_chrome("/console/requests", &caller, "requests"),
        open: queue.open.iter().map(row).collect(),
        answered: queue.answered.iter().map(row).collect(),
        more,
    }
    .render();
    ctx.render(StatusCode::OK, html)
}

#[derive(Template)]
#[template(path = "console_request.html")]
struct RequestPage {
    c: Chrome,
    r: QueueRow,
    /// (account reference, bound on) of each binding the request is about.
    accounts: Vec<(String, String)>,
    /// The holder's proof, checked as of when the request was made; `None` when no longer kept.
    proof: Option<VerifyOutcome>,
    proof_as_of: String,
    reason: Option<String>,
    answered_at: Option<String>,
    /// (value, words) of each reason a rejection may give.
    reasons: Vec<(&'static str, String)>,
    notice: Option<String>,
    /// What is wrong with the answer sent, and the answer as it was sent (kept on the form).
    alert: Option<String>,
    sent_outcome: String,
    sent_reason: String,
}

fn reason_words(lang: Lang, r: RejectReason) -> String {
    lang.t(&format!("console-reason-{}", r.as_str().replace('_', "-")))
}

/// An answer sent and refused: what is wrong, and the outcome and reason as sent.
struct Refused {
    alert: String,
    outcome: String,
    reason: String,
}

async fn request_page(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    notice: Option<String>,
    refused: Option<Refused>,
    status: StatusCode,
) -> Response {
    let state = &ctx.state;
    let r = match unbind::get(state, caller, id).await {
        Ok(r) => r,
        Err(e) => return ctx.refused_for(caller, e),
    };
    let proof = match unbind::proof(state, caller, id).await {
        Ok(Some(token)) => match check_proof_at(state, ctx.lang, &token, r.created_unix).await {
            Ok(v) => Some(v),
            Err(e) => return ctx.refused_for(caller, e.into()),
        },
        Ok(None) => None,
        Err(e) => return ctx.refused_for(caller, e),
    };
    let lang = ctx.lang;
    let tz = &state.holder.config.time_zone;
    // By account reference, as an operator looks them up.
    let mut bindings: Vec<_> = r.bindings.iter().collect();
    bindings.sort_by(|a, b| a.account_ref.cmp(&b.account_ref));
    let html = RequestPage {
        c: ctx.console_chrome(&format!("/console/requests/{id}"), caller, "requests"),
        accounts: bindings.iter().map(|b| (b.account_ref.clone(), lang.day(b.bound_on))).collect(),
        reason: r.reason.map(|x| reason_words(lang, x)),
        answered_at: r.resolved_unix.map(|t| lang.moment(t, tz)),
        r: QueueRow::new(lang, tz, &r, r.bindings.len(), state.store.today()),
        proof_as_of: lang.moment(r.created_unix, tz),
        proof,
        reasons: RejectReason::ALL.iter().map(|&x| (x.as_str(), reason_words(lang, x))).collect(),
        notice,
        sent_outcome: refused.as_ref().map(|r| r.outcome.clone()).unwrap_or_default(),
        sent_reason: refused.as_ref().map(|r| r.reason.clone()).unwrap_or_default(),
        alert: refused.map(|r| r.alert),
    }
    .render();
    ctx.render(status, html)
}

/// `GET /console/requests/{id}[?answered=1]`: one request, the accounts it is about, the holder's proof
/// checked, and the answer.
pub async fn request(
    SignedIn { ctx, caller }: SignedIn,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let notice = Form::of_query(query.as_deref()).get("answered").map(|_| ctx.lang.t("console-answered-notice"));
    request_page(&ctx, &caller, &id, notice, None, StatusCode::OK).await
}

/// `POST /console/requests/{id}/resolve`: the answer (`outcome`, and `reason` for a rejection), through
/// the API's own function.
pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedBy { ctx, caller, form }: PostedBy,
) -> Response {
    let outcome = form.get("outcome").unwrap_or("");
    let reason = form.get("reason").filter(|r| !r.is_empty() && outcome == "rejected");
    let resolution = match unbind::resolution(outcome, reason) {
        Ok(r) => r,
        Err(_) => {
            let refused = Refused {
                alert: ctx.lang.t(if outcome == "rejected" { "console-needs-reason" } else { "console-needs-outcome" }),
                outcome: outcome.chars().take(16).collect(),
                reason: form.get("reason").unwrap_or("").chars().take(32).collect(),
            };
            return request_page(&ctx, &caller, &id, None, Some(refused), StatusCode::BAD_REQUEST).await;
        }
    };
    match unbind::resolve(&state, &caller, &id, resolution).await {
        Ok(_) => see_other(&format!("/console/requests/{}?answered=1", super::percent_encode(&id))),
        Err(e) => ctx.refused_for(&caller, e),
    }
}

/// The frame of a console page in a test, for a participant of `role`.
#[cfg(test)]
fn test_chrome(lang: Lang, role: Role) -> Chrome {
    Chrome { console: Some(("Bank".into(), role)), ..Chrome::new(lang, "/console") }
}

/// Fails when a page rendered on this thread asked for a message no catalogue has, or left an
/// argument unfilled.
#[cfg(test)]
fn assert_all_worded(pages: &[String]) {
    let missing = crate::web::i18n::tests::MISSING.with_borrow(|m| m.clone());
    assert!(missing.is_empty(), "messages no catalogue has: {missing:?}");
    assert!(pages.iter().all(|p| !p.contains("{$")), "an argument left unfilled");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::{ProblemPage, ShownClaims};

    /// Every console page and state, rendered in both languages: none asks for a message a catalogue
    /// lacks, or leaves an argument unfilled.
    #[test]
    fn every_console_page_renders_in_both_languages() {
        let day = domain::Day::parse("2026-12-07").unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            let c = |role| test_chrome(lang, role);
            let refused = lang.t("console-key-refused");
            let flooded = lang.t_args("console-too-many-failures", &[("when", "x")]);
            for (error, ended) in [(None, false), (Some(refused), false), (Some(flooded), false), (None, true)] {
                let notice = ended.then(|| lang.t_args("console-ended-notice", &[("minutes", "30")]));
                pages.push(SignInPage { c: Chrome::new(lang, "/console"), error, notice }.render().unwrap());
            }
            for (events, alert) in [(None, None), (Some(vec![]), None), (None, Some(lang.t("number-invalid")))] {
                let page = HomePage {
                    c: c(Role::Carrier),
                    ranges: vec!["+86138".into()],
                    reporting_since: Some(lang.day(day)),
                    typed: "+8613800138000".into(),
                    alert,
                    events,
                };
                pages.push(page.render().unwrap());
            }
            for kind in domain::EventKind::ALL {
                let page = HomePage {
                    c: c(Role::Carrier),
                    ranges: vec![],
                    reporting_since: None,
                    typed: String::new(),
                    alert: None,
                    events: Some(vec![(
                        lang.day(day),
                        lang.t(&format!("event-kind-{}", kind.as_str().replace('_', "-"))),
                        "e1".into(),
                        Some("car_x".into()),
                    )]),
                };
                pages.push(page.render().unwrap());
            }
            let request = |state, deadline: &str, reason| UnbindRequest {
                id: store::UnbindRequestId::parse("unb_0123456789abcdef0123").unwrap(),
                institution_id: "ins_0123456789abcdef0123".into(),
                institution_name: "Bank".into(),
                state,
                reason,
                deadline: domain::Day::parse(deadline).unwrap(),
                attestation_id: String::new(),
                created_at: String::new(),
                created_unix: 0,
                resolved_at: None,
                resolved_unix: Some(1),
                bindings: vec![],
            };
            let rows = |lang| {
                [
                    ("2026-12-06", 0),
                    ("2026-12-07", 0),
                    ("2026-12-08", 0),
                    ("2026-12-20", 0),
                    ("2026-11-01", 1),
                    ("2026-11-01", 2),
                ]
                .iter()
                .map(|&(d, k)| {
                    let r = match k {
                        0 => request(UnbindState::Open, d, None),
                        1 => request(UnbindState::Unbound, d, None),
                        _ => request(UnbindState::Rejected, d, Some(RejectReason::LegalHold)),
                    };
                    QueueRow::new(lang, &utc, &r, 2, day)
                })
                .collect::<Vec<_>>()
            };
            let more = Some(lang.t_args("console-open-more", &[("shown", "5000"), ("total", "5001")]));
            pages.push(
                QueuePage { c: c(Role::Institution), open: rows(lang), answered: vec![], more }.render().unwrap(),
            );
            pages.push(
                QueuePage { c: c(Role::Institution), open: vec![], answered: rows(lang), more: None }.render().unwrap(),
            );
            let proof = |i| match i {
                0 => Some(VerifyOutcome::Valid(ShownClaims {
                    number: "+8613800138000".into(),
                    held_since: lang.day(day),
                    expires: lang.moment(0, &utc),
                    issuer: "numlink".into(),
                })),
                1 => Some(VerifyOutcome::Invalid("verify-why-expired")),
                _ => None,
            };
            for i in 0..3 {
                // An open request (with the answer form) and an answered one.
                for r in rows(lang).into_iter().take(1).chain(rows(lang).into_iter().skip(5)) {
                    let page = RequestPage {
                        c: c(Role::Institution),
                        r,
                        accounts: vec![("acct-1".into(), lang.day(day))],
                        proof: proof(i),
                        proof_as_of: lang.moment(0, &utc),
                        reason: Some(reason_words(lang, RejectReason::NoSuchBinding)),
                        answered_at: Some(lang.moment(1, &utc)),
                        reasons: RejectReason::ALL.iter().map(|&x| (x.as_str(), reason_words(lang, x))).collect(),
                        notice: Some(lang.t("console-answered-notice")),
                        alert: Some(lang.t("console-needs-reason")),
                        sent_outcome: "rejected".into(),
                        sent_reason: "legal_hold".into(),
                    };
                    pages.push(page.render().unwrap());
                }
            }
            lang.t("console-needs-outcome");
            for secs in [0, 59, 60, 3_700, 90_000] {
                duration(lang, secs);
            }
            let q = ReportQuery::of(Some("from=2026-01-01&to=2026-12-31&sort=median&dir=asc"));
            let headings = REPORT_COLUMNS
                .iter()
                .map(|(key, label)| ReportHeading {
                    label: lang.t(label),
                    href: q.href("/console/report", key, true),
                    sorted: (*key == q.sort).then_some("ascending"),
                    arrow: if *key == q.sort { " ↑" } else { "" },
                })
                .collect::<Vec<_>>();
            for (lines, alert) in [(0, None), (2, Some(lang.t("report-bad-period")))] {
                let lines = (0..lines)
                    .map(|i| ReportLine {
                        name: format!("Bank {i}"),
                        cells: vec!["1".into(); 8],
                        reasons: format!(
                            "{}: 1{}{}: 2",
                            lang.t("report-reason-legal-hold"),
                            lang.t("list-separator"),
                            lang.t("report-reason-no-such-binding")
                        ),
                        late: i == 0,
                    })
                    .collect();
                let page = ReportPage {
                    c: c(Role::Regulator),
                    from: q.from.clone(),
                    to: q.to.clone(),
                    as_of: lang.day(day),
                    headings: headings
                        .iter()
                        .map(|h| ReportHeading {
                            label: h.label.clone(),
                            href: h.href.clone(),
                            sorted: h.sorted,
                            arrow: h.arrow,
                        })
                        .collect(),
                    lines,
                    csv_href: q.href("/console/report.csv", q.sort, false),
                    alert,
                    charts: {
                        let empty = store::ReportSeries::default();
                        let some = store::ReportSeries {
                            resolve_secs: vec![60, 90_000],
                            overdue_by_week: vec![(day, 2)],
                            ack_days: vec![(Some(1), 3), (None, 1)],
                        };
                        [&empty, &some]
                            .into_iter()
                            .flat_map(|s| {
                                [
                                    charts::resolve_times(lang, s),
                                    charts::overdue_by_week(lang, s),
                                    charts::ack_latency(lang, s),
                                ]
                            })
                            .collect()
                    },
                    charts_period: Some(lang.t_args("charts-last-weeks", &[("weeks", "26")])),
                };
                pages.push(page.render().unwrap());
            }
            for why in RejectReason::ALL {
                lang.t(&format!("report-reason-{}", why.as_str().replace('_', "-")));
            }
            for key in ["console-not-found", "console-not-for-role", "console-answered-before"] {
                let page = ProblemPage {
                    c: c(Role::Institution),
                    title: lang.t(&format!("{key}-title")),
                    body: lang.t(&format!("{key}-body")),
                    next: lang.t(&format!("{key}-next")),
                    resend: None,
                    action_href: "/console",
                    action_label: "action-console-home",
                };
                pages.push(page.render().unwrap());
            }
            lang.t("action-console-requests");
            for rows in [0, 2] {
                let rows = (0..rows)
                    .map(|i| NoticeRow {
                        id: format!("ntf_{i}"),
                        kind: kind_words(lang, store::NotificationType::ALL[i % 5]),
                        created: lang.moment(0, &utc),
                        account: Some("acct-1".into()),
                        event_date: Some(lang.day(day)),
                        reissuable_from: Some(lang.day(day)),
                        request: Some("unb_x".into()),
                        acked: (i == 1).then(|| {
                            let action = action_words(lang, "unbound");
                            lang.t_args("notice-acked", &[("action", &action), ("when", "x")])
                        }),
                    })
                    .collect();
                let page = NotificationsPage {
                    c: c(Role::Institution),
                    rows,
                    kinds: store::NotificationType::ALL
                        .iter()
                        .map(|k| (k.as_str(), kind_words(lang, *k), false))
                        .collect(),
                    acks: vec![
                        ("all", lang.t("notice-acked-all"), true),
                        ("no", lang.t("notice-acked-no"), false),
                        ("yes", lang.t("notice-acked-yes"), false),
                    ],
                    actions: store::ACK_ACTIONS.iter().map(|a| (*a, action_words(lang, a))).collect(),
                    older: Some("/console/notifications?before=1".into()),
                    back: String::new(),
                    notice: Some(lang.t_args("notice-done", &[("count", "2")])),
                };
                pages.push(page.render().unwrap());
            }
            lang.t("notice-kind-all");
            action_words(lang, "");
        }
        assert_all_worded(&pages);
        assert_eq!(Lang::En.t_args("console-days-left", &[("days", "1")]), "1 day left");
        assert_eq!(duration(Lang::En, 90_000), "1 d 1 h");
        assert_eq!(duration(Lang::ZhCn, 3_700), "1 小时 1 分钟");
    }
}

/// A column of the regulator's table: its sort key, its heading's message id, and whether it counts
/// something bad (sorted worst first by default).
const REPORT_COLUMNS: [(&str, &str); 9] = [
    ("name", "report-col-institution"),
    ("open", "report-col-open"),
    ("overdue", "report-col-overdue"),
    ("resolved", "report-col-resolved"),
    ("late", "report-col-late"),
    ("rejected", "report-col-rejected"),
    ("median", "report-col-median"),
    ("p90", "report-col-p90"),
    ("unacked", "report-col-unacked"),
];

/// A heading of the regulator's table, with the link that sorts by it.
pub struct ReportHeading {
    pub label: String,
    pub href: String,
    /// `ascending` or `descending` on the column sorted by.
    pub sorted: Option<&'static str>,
    /// ↑ or ↓ on the column sorted by.
    pub arrow: &'static str,
}

/// An institution's line, worded.
pub struct ReportLine {
    pub name: String,
    pub cells: Vec<String>,
    /// "legal hold: 2, …", for the rejected cell's detail.
    pub reasons: String,
    /// Has requests past their deadline.
    pub late: bool,
}

#[derive(Template)]
#[template(path = "console_report.html")]
struct ReportPage {
    c: Chrome,
    from: String,
    to: String,
    as_of: String,
    headings: Vec<ReportHeading>,
    lines: Vec<ReportLine>,
    csv_href: String,
    /// What is wrong with the period asked for.
    alert: Option<String>,
    charts: Vec<charts::Chart>,
    /// What the charts cover when no period was chosen.
    charts_period: Option<String>,
}

/// A duration in this language's words, to the minute (or the hour, past a day).
fn duration(lang: Lang, secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let n = |v: i64| v.to_string();
    match (d, h, m) {
        (0, 0, 0) => lang.t("duration-under-a-minute"),
        (0, 0, m) => lang.t_args("duration-minutes", &[("m", &n(m))]),
        (0, h, m) => lang.t_args("duration-hours-minutes", &[("h", &n(h)), ("m", &n(m))]),
        (d, h, _) => lang.t_args("duration-days-hours", &[("d", &n(d)), ("h", &n(h))]),
    }
}

/// The sort key of an institution's line for a column.
fn sort_key(r: &store::InstitutionReport, column: &str) -> i64 {
    let rejected: u64 = r.rejected_by_reason.iter().map(|(_, n)| n).sum();
    let n = |v: u64| v as i64;
    match column {
        "open" => n(r.open),
        "overdue" => n(r.overdue),
        "resolved" => n(r.resolved),
        "late" => n(r.resolved_late),
        "rejected" => n(rejected),
        "median" => r.resolve_secs_median.unwrap_or(-1),
        "p90" => r.resolve_secs_p90.unwrap_or(-1),
        "unacked" => n(r.notifications_unacked_overdue),
        _ => 0,
    }
}

/// The report's period and order, from the page's query.
struct ReportQuery {
    from: String,
    to: String,
    sort: &'static str,
    descending: bool,
}

impl ReportQuery {
    fn of(query: Option<&str>) -> ReportQuery {
        let q = Form::of_query(query);
        let sort = q
            .get("sort")
            .and_then(|s| REPORT_COLUMNS.iter().find(|(key, _)| *key == s).map(|(key, _)| *key))
            .unwrap_or("overdue");
        let descending = q.get("dir").map_or(sort != "name", |d| d != "asc");
        let day = |k| q.get(k).unwrap_or("").chars().take(10).collect::<String>();
        ReportQuery { from: day("from"), to: day("to"), sort, descending }
    }

    /// The query of this period, sorted by `sort`.
    fn href(&self, path: &str, sort: &str, descending: bool) -> String {
        let dir = if descending { "desc" } else { "asc" };
        format!("{path}?from={}&to={}&sort={sort}&dir={dir}", self.from, self.to)
    }

    fn period(&self) -> crate::error::ApiResult<Option<store::Period>> {
        fn given(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        crate::report::period(given(&self.from), given(&self.to))
    }
}

/// `GET /console/report[?from=&to=&sort=&dir=]`: the regulator's table, per institution, for a period,
/// sortable by any column, with its CSV.
pub async fn report(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let q = ReportQuery::of(query.as_deref());
    let (period, alert) = match q.period() {
        Ok(p) => (p, None),
        Err(_) => (None, Some(ctx.lang.t("report-bad-period"))),
    };
    let ((as_of, mut rows), series) = match tokio::try_join!(
        crate::report::institutions(&state, &caller, period),
        crate::report::series(&state, &caller, period)
    ) {
        Ok(v) => v,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    rows.sort_by(|a, b| {
        let order = if q.sort == "name" {
            a.institution_name.cmp(&b.institution_name)
        } else {
            sort_key(a, q.sort).cmp(&sort_key(b, q.sort))
        };
        let order = if q.descending { order.reverse() } else { order };
        order.then(a.institution_name.cmp(&b.institution_name))
    });
    let lang = ctx.lang;
    let headings = REPORT_COLUMNS
        .iter()
        .map(|(key, label)| {
            let sorted = (*key == q.sort).then_some(if q.descending { "descending" } else { "ascending" });
            // A click sorts by it; on the sorted column, the other way.
            let descending = if *key == q.sort { !q.descending } else { *key != "name" };
            let arrow = match sorted {
                Some("descending") => " ↓",
                Some(_) => " ↑",
                None => "",
            };
            ReportHeading { label: lang.t(label), href: q.href("/console/report", key, descending), sorted, arrow }
        })
        .collect();
    let secs = |v: Option<i64>| v.map_or_else(|| "—".to_string(), |s| duration(lang, s));
    let lines = rows
        .iter()
        .map(|r| ReportLine {
            name: r.institution_name.clone(),
            late: r.overdue > 0,
            cells: vec![
                r.open.to_string(),
                r.overdue.to_string(),
                r.resolved.to_string(),
                r.resolved_late.to_string(),
                r.rejected_by_reason.iter().map(|(_, n)| n).sum::<u64>().to_string(),
                secs(r.resolve_secs_median),
                secs(r.resolve_secs_p90),
                r.notifications_unacked_overdue.to_string(),
            ],
            reasons: r
                .rejected_by_reason
                .iter()
                .map(|(why, n)| {
                    format!("{}: {n}", lang.t(&format!("report-reason-{}", why.as_str().replace('_', "-"))))
                })
                .collect::<Vec<_>>()
                .join(lang.t("list-separator").as_str()),
        })
        .collect();
    let html = ReportPage {
        c: ctx.console_chrome(&q.href("/console/report", q.sort, q.descending), &caller, "report"),
        csv_href: q.href("/console/report.csv", q.sort, q.descending),
        from: q.from.clone(),
        to: q.to.clone(),
        as_of: lang.day(as_of),
        headings,
        lines,
        alert,
        charts: vec![
            charts::resolve_times(lang, &series),
            charts::overdue_by_week(lang, &series),
            charts::ack_latency(lang, &series),
        ],
        charts_period: period
            .is_none()
            .then(|| lang.t_args("charts-last-weeks", &[("weeks", &crate::report::CHART_WEEKS_MAX.to_string())])),
    }
    .render();
    ctx.render(if period.is_none() && !q.from.is_empty() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, html)
}

/// `GET /console/report.csv[?from=&to=]`: the same table as a file, a column per figure (seconds, not
/// words), for a spreadsheet.
pub async fn report_csv(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let q = ReportQuery::of(query.as_deref());
    let period = match q.period() {
        Ok(p) => p,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let (as_of, rows) = match crate::report::institutions(&state, &caller, period).await {
        Ok(v) => v,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["institution_id", "name", "open", "overdue", "resolved", "resolved_late", "rejected"];
    let reasons: Vec<String> = RejectReason::ALL.iter().map(|r| format!("rejected_{}", r.as_str())).collect();
    head.extend(reasons.iter().map(String::as_str));
    head.extend(["resolve_seconds_median", "resolve_seconds_p90", "notifications_unacked_overdue"]);
    let mut rows_out = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for r in &rows {
        let of = |why: RejectReason| r.rejected_by_reason.iter().find(|(x, _)| *x == why).map_or(0, |(_, n)| *n);
        let mut line = vec![
            r.institution_id.clone(),
            workers::files::csv_cell(&r.institution_name).into_owned(),
            r.open.to_string(),
            r.overdue.to_string(),
            r.resolved.to_string(),
            r.resolved_late.to_string(),
            r.rejected_by_reason.iter().map(|(_, n)| n).sum::<u64>().to_string(),
        ];
        line.extend(RejectReason::ALL.iter().map(|&why| of(why).to_string()));
        let opt = |v: Option<i64>| v.map(|s| s.to_string()).unwrap_or_default();
        line.extend([opt(r.resolve_secs_median), opt(r.resolve_secs_p90), r.notifications_unacked_overdue.to_string()]);
        rows_out.push(line);
    }
    for row in rows_out {
        if w.write_record(&row).is_err() {
            return ctx.refused_for(&caller, ApiError::new(ErrorCode::Internal, "the report could not be written"));
        }
    }
    let body = w.into_inner().unwrap_or_default();
    let name = format!("attachment; filename=\"numlink-report-{as_of}.csv\"");
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if let Ok(v) = header::HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Notifications listed on one page of the console.
const NOTIFICATIONS_PAGE_ROWS: u32 = 100;

/// A notification on the institution's page.
pub struct NoticeRow {
    pub id: String,
    pub kind: String,
    pub created: String,
    pub account: Option<String>,
    pub event_date: Option<String>,
    pub reissuable_from: Option<String>,
    /// For an `unbind.requested`: the request's page.
    pub request: Option<String>,
    /// Acknowledged: the action and when, worded.
    pub acked: Option<String>,
}

#[derive(Template)]
#[template(path = "console_notifications.html")]
struct NotificationsPage {
    c: Chrome,
    rows: Vec<NoticeRow>,
    /// (value, words, chosen) of the type filter's options, and of the acknowledgement filter's.
    kinds: Vec<(&'static str, String, bool)>,
    acks: Vec<(&'static str, String, bool)>,
    /// (value, words) of the actions an acknowledgement names.
    actions: Vec<(&'static str, String)>,
    /// The next page's link, if there may be more.
    older: Option<String>,
    /// The filters, for the acknowledgement form to come back to.
    back: String,
    notice: Option<String>,
}

fn kind_words(lang: Lang, kind: store::NotificationType) -> String {
    lang.t(&format!("notice-kind-{}", kind.as_str().replace(['.', '_'], "-")))
}

fn action_words(lang: Lang, action: &str) -> String {
    if action.is_empty() {
        return lang.t("notice-action-none");
    }
    lang.t(&format!("notice-action-{}", action.replace('_', "-")))
}

/// `GET /console/notifications[?type=&acked=&before=&done=]`: the institution's notifications, newest
/// first, by type and acknowledgement, with a form to acknowledge one or many.
pub async fn notifications(
    State(state): State<AppState>,
    SignedIn { ctx, caller }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let q = Form::of_query(query.as_deref());
    let kind = q.get("type").and_then(store::NotificationType::parse);
    let acked_choice = q.get("acked").filter(|a| ["yes", "no"].contains(a)).unwrap_or("all");
    let acked = match acked_choice {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok()).filter(|b| *b > 0).unwrap_or(0);
    let filter = store::NotificationFilter { kind, acked };
    let page = match crate::feed::newest(&state, &caller, filter, before, NOTIFICATIONS_PAGE_ROWS).await {
        Ok(p) => p,
        Err(e) => return ctx.refused_for(&caller, e),
    };
    let lang = ctx.lang;
    let tz = &state.holder.config.time_zone;
    let type_value = kind.map_or("", |k| k.as_str());
    let filters = format!("type={}&acked={acked_choice}", super::percent_encode(type_value));
    let moment = |t: &str| lang.stored_moment(t, tz);
    let rows = page
        .iter()
        .map(|n| NoticeRow {
            id: n.id.to_string(),
            kind: kind_words(lang, n.kind),
            created: moment(&n.created_at),
            account: n.account_ref.clone(),
            event_date: n.event_date.map(|d| lang.day(d)),
            reissuable_from: n.reissuable_from.map(|d| lang.day(d)),
            request: n.unbind_request_id.clone(),
            acked: n.acked_at.as_ref().map(|at| {
                let action = action_words(lang, n.ack_action.as_deref().unwrap_or(""));
                lang.t_args("notice-acked", &[("action", &action), ("when", &moment(at))])
            }),
        })
        .collect();
    let older = (page.len() == NOTIFICATIONS_PAGE_ROWS as usize)
        .then(|| page.last().map(|n| format!("/console/notifications?{filters}&before={}", n.seq)))
        .flatten();
    let mut kinds = vec![("", lang.t("notice-kind-all"), kind.is_none())];
    kinds.extend(store::NotificationType::ALL.iter().map(|k| (k.as_str(), kind_words(lang, *k), Some(*k) == kind)));
    let acks = [("all", "notice-acked-all"), ("no", "notice-acked-no"), ("yes", "notice-acked-yes")]
        .into_iter()
        .map(|(v, id)| (v, lang.t(id), v == acked_choice))
        .collect();
    let done = q.get("done").and_then(|d| d.parse::<u32>().ok());
    let html = NotificationsPage {
        c: ctx.console_chrome(&format!("/console/notifications?{filters}"), &caller, "notifications"),
        rows,
        kinds,
        acks,
        actions: store::ACK_ACTIONS.iter().map(|a| (*a, action_words(lang, a))).collect(),
        older,
        back: filters,
        notice: done.map(|n| lang.t_args("notice-done", &[("count", &n.to_string())])),
    }
    .render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /console/notifications/ack`: acknowledges the notifications ticked with one action, each
/// through the API's own function; back to the list, saying how many.
pub async fn ack_notifications(State(state): State<AppState>, PostedBy { ctx, caller, form }: PostedBy) -> Response {
    let action = form.get("action").unwrap_or("");
    let ids = form.all("id");
    if ids.len() > NOTIFICATIONS_PAGE_ROWS as usize {
        return ctx.refused_for(&caller, ApiError::invalid("more notifications than one page holds"));
    }
    let mut done = 0;
    for id in &ids {
        match crate::feed::ack(&state, &caller, id, action).await {
            Ok(_) => done += 1,
            Err(e) => return ctx.refused_for(&caller, e),
        }
    }
    // Back to the same filters (only the characters a filter holds).
    let back: String = form
        .get("back")
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=&._%".contains(*c))
        .take(200)
        .collect();
    see_other(&format!("/console/notifications?{back}&done={done}"))
}
