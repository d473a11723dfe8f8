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
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use domain::RejectReason;
use store::{Role, UnbindRequest, UnbindState};

use super::forms::{Csrf, Form, NotAForm};
use super::{Chrome, Ctx, Lang, VerifyOutcome, check_proof, see_other};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::unbind;

/// The console session's cookie.
const CONSOLE_COOKIE: &str = "nl_console";
/// Characters of a pasted API key looked at (a key is 52).
const KEY_CHARS_MAX: usize = 128;
/// Requests listed on the queue.
const QUEUE_ROWS_MAX: u32 = 1_000;

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

    /// The page for an API refusal. Another's object and no object are the same page, as in the API.
    fn api_refused(&self, e: ApiError) -> Response {
        let (key, back) = match e.code {
            ErrorCode::NotFound => ("console-not-found", ("/console", "action-console-home")),
            ErrorCode::PermissionDenied => ("console-not-for-role", ("/console", "action-console-home")),
            ErrorCode::Conflict => ("console-answered-before", ("/console/requests", "action-console-requests")),
            ErrorCode::InvalidArgument => ("bad-form", ("/console", "action-console-home")),
            _ => {
                tracing::error!(code = e.code.as_str(), message = %e.message, "a console page could not be served");
                ("unavailable", ("/console", "action-try-again"))
            }
        };
        self.problem(e.code.status(), key, back)
    }
}

/// Where a participant's console begins.
fn home(role: Role) -> &'static str {
    match role {
        Role::Institution => "/console/requests",
        Role::Carrier | Role::Regulator | Role::Portability => "/console/home",
    }
}

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage {
    c: Chrome,
    /// The message id of what went wrong.
    error: Option<&'static str>,
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
    let minutes = (state.limits.console_idle_secs / 60).to_string();
    let notice = Form::of_query(query.as_deref())
        .get("ended")
        .map(|_| ctx.lang.t_args("console-ended-notice", &[("minutes", &minutes)]));
    let html = SignInPage { c: ctx.chrome("/console", None, ""), error: None, notice }.render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /console/sign-in`: the API key, exchanged for a session.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let form = match ctx.posted(&headers, form) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let key: String = form.get("key").unwrap_or("").trim().chars().take(KEY_CHARS_MAX + 1).collect();
    let opened = if key.is_empty() || key.len() > KEY_CHARS_MAX {
        Ok(None)
    } else {
        state.store.open_console_session(key, state.limits.console_idle_secs).await
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
            let html =
                SignInPage { c: ctx.chrome("/console", None, ""), error: Some("console-key-refused"), notice: None }
                    .render();
            ctx.render(StatusCode::UNAUTHORIZED, html)
        }
        Err(e) => ctx.api_refused(e.into()),
    }
}

/// `POST /console/sign-out`: ends the session.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    if let Err(page) = ctx.posted(&headers, form) {
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

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage {
    c: Chrome,
}

/// `GET /console/home`: a carrier's or the regulator's console.
pub async fn role_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let caller = match ctx.caller(&headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let html = HomePage { c: ctx.console_chrome("/console/home", &caller, "home") }.render();
    ctx.render(StatusCode::OK, html)
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
    fn new(lang: Lang, tz: &jiff::tz::TimeZone, r: &UnbindRequest, today: domain::Day) -> QueueRow {
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
            accounts: r.bindings.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "console_requests.html")]
struct QueuePage {
    c: Chrome,
    open: Vec<QueueRow>,
    answered: Vec<QueueRow>,
}

/// `GET /console/requests`: the institution's unbind requests, the open ones by deadline (the most
/// urgent first, overdue marked), then those answered, newest first.
pub async fn queue(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let caller = match ctx.caller(&headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let mut requests = match unbind::list(&state, &caller, "", QUEUE_ROWS_MAX).await {
        Ok(r) => r,
        Err(e) => return ctx.api_refused(e),
    };
    let today = state.store.today();
    let tz = &state.holder.config.time_zone;
    requests.sort_by(|a, b| a.deadline.cmp(&b.deadline).then(a.created_unix.cmp(&b.created_unix)));
    let (open, mut answered): (Vec<_>, Vec<_>) = requests.iter().partition(|r| r.state == UnbindState::Open);
    answered.sort_by_key(|r| std::cmp::Reverse(r.resolved_unix));
    let row = |r: &&UnbindRequest| QueueRow::new(ctx.lang, tz, r, today);
    let html = QueuePage {
        c: ctx.console_chrome("/console/requests", &caller, "requests"),
        open: open.iter().map(row).collect(),
        answered: answered.iter().map(row).collect(),
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
    /// The holder's proof, checked; `None` when no longer kept.
    proof: Option<VerifyOutcome>,
    reason: Option<String>,
    answered_at: Option<String>,
    /// (value, words) of each reason a rejection may give.
    reasons: Vec<(&'static str, String)>,
    notice: Option<String>,
    /// What is wrong with the answer sent.
    alert: Option<String>,
}

fn reason_words(lang: Lang, r: RejectReason) -> String {
    lang.t(&format!("console-reason-{}", r.as_str().replace('_', "-")))
}

async fn request_page(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Response {
    let state = &ctx.state;
    let r = match unbind::get(state, caller, id).await {
        Ok(r) => r,
        Err(e) => return ctx.api_refused(e),
    };
    let proof = match unbind::proof(state, caller, id).await {
        Ok(Some(token)) => match check_proof(state, ctx.lang, &token).await {
            Ok(v) => Some(v),
            Err(e) => return ctx.api_refused(e.into()),
        },
        Ok(None) => None,
        Err(e) => return ctx.api_refused(e),
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
        r: QueueRow::new(lang, tz, &r, state.store.today()),
        proof,
        reasons: RejectReason::ALL.iter().map(|&x| (x.as_str(), reason_words(lang, x))).collect(),
        notice,
        alert,
    }
    .render();
    ctx.render(status, html)
}

/// `GET /console/requests/{id}[?answered=1]`: one request, the accounts it is about, the holder's proof
/// checked, and the answer.
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let caller = match ctx.caller(&headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let notice = Form::of_query(query.as_deref()).get("answered").map(|_| ctx.lang.t("console-answered-notice"));
    request_page(&ctx, &caller, &id, notice, None, StatusCode::OK).await
}

/// `POST /console/requests/{id}/resolve`: the answer (`outcome`, and `reason` for a rejection), through
/// the API's own function.
pub async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form, NotAForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let form = match ctx.posted(&headers, form) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let caller = match ctx.caller(&headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let outcome = form.get("outcome").unwrap_or("");
    let reason = form.get("reason").filter(|r| !r.is_empty() && outcome == "rejected");
    let resolution = match unbind::resolution(outcome, reason) {
        Ok(r) => r,
        Err(_) => {
            let alert =
                Some(ctx.lang.t(if outcome == "rejected" { "console-needs-reason" } else { "console-needs-outcome" }));
            return request_page(&ctx, &caller, &id, None, alert, StatusCode::BAD_REQUEST).await;
        }
    };
    match unbind::resolve(&state, &caller, &id, resolution).await {
        Ok(_) => see_other(&format!("/console/requests/{}?answered=1", super::percent_encode(&id))),
        Err(e) => ctx.api_refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::{ProblemPage, ShownClaims};

    /// Every console page and state, rendered in both languages: none asks for a message a catalogue
    /// lacks, or leaves an argument unfilled.
    #[test]
    fn every_console_page_renders_in_both_languages() {
        use crate::web::i18n::tests::MISSING;
        let day = domain::Day::parse("2026-12-07").unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            let c = |role| Chrome { console: Some(("Bank".into(), role)), ..Chrome::new(lang, "/console") };
            for (error, ended) in [(None, false), (Some("console-key-refused"), false), (None, true)] {
                let notice = ended.then(|| lang.t_args("console-ended-notice", &[("minutes", "30")]));
                pages.push(SignInPage { c: Chrome::new(lang, "/console"), error, notice }.render().unwrap());
            }
            pages.push(HomePage { c: c(Role::Carrier) }.render().unwrap());
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
                    QueueRow::new(lang, &utc, &r, day)
                })
                .collect::<Vec<_>>()
            };
            pages.push(QueuePage { c: c(Role::Institution), open: rows(lang), answered: vec![] }.render().unwrap());
            pages.push(QueuePage { c: c(Role::Institution), open: vec![], answered: rows(lang) }.render().unwrap());
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
                        reason: Some(reason_words(lang, RejectReason::NoSuchBinding)),
                        answered_at: Some(lang.moment(1, &utc)),
                        reasons: RejectReason::ALL.iter().map(|&x| (x.as_str(), reason_words(lang, x))).collect(),
                        notice: Some(lang.t("console-answered-notice")),
                        alert: Some(lang.t("console-needs-reason")),
                    };
                    pages.push(page.render().unwrap());
                }
            }
            lang.t("console-needs-outcome");
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
        }
        let missing = MISSING.with_borrow(|m| m.clone());
        assert!(missing.is_empty(), "messages no catalogue has: {missing:?}");
        assert!(pages.iter().all(|p| !p.contains("{$")), "an argument left unfilled");
        assert_eq!(Lang::En.t_args("console-days-left", &[("days", "1")]), "1 day left");
    }
}
