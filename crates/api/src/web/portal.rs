//! The holder's portal at `/`: enter the number, type the code that arrives by SMS, see which
//! institutions hold a binding made before the tenure, ask one, several or all of them to unbind,
//! follow the requests, take a proof of tenure, see who looked the number up, sign out.
//!
//! Every step calls the same functions as the JSON API (`crate::holder`): the same limits, the same
//! non-enumeration, the same tenure checks. The session is the API's token, kept in an `HttpOnly`,
//! `SameSite=Strict` cookie (never in a page or a URL); every form carries a CSRF token
//! (`forms::Csrf`). A refusal becomes a page that says what happened and what to do next.

use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use domain::holder::RejectReason;
use domain::{Day, PhoneNumber};
use store::{StaleHolder, UnbindRequest, UnbindState};

use super::forms::{Cookies, Csrf, Form, NotAForm};
use super::{Chrome, Ctx, Lang, ProblemPage, percent_encode, see_other};
use crate::admit::ClientAddr;
use crate::holder::{self, Holder, Refusal};
use crate::state::{AppState, HolderConfig};

/// The session cookie: the holder's token (`nlh_…`).
const SESSION_COOKIE: &str = "nl_session";
/// The code step's cookie: the number, the challenge id and when the code was sent.
const CODE_COOKIE: &str = "nl_code";
/// Characters of a typed phone number looked at.
const NUMBER_CHARS_MAX: usize = 40;

impl Ctx {
    /// The signed-in holder, or the page to answer instead: without a session cookie, the first page
    /// (a link followed from another site arrives without it, and must not end the session); with one
    /// that is no longer good, the page that says why (and the cookie is removed).
    async fn holder(&self, headers: &HeaderMap) -> Result<Holder, Response> {
        let Some(token) = self.cookies.get(headers, SESSION_COOKIE) else { return Err(see_other("/")) };
        holder::authenticate(&self.state, token).await.map_err(|r| self.refused(r, None))
    }

    /// The page for a refusal: what happened and what to do next. A session that ended or met a
    /// change of holder is forgotten.
    fn refused(&self, r: Refusal, number: Option<PhoneNumber>) -> Response {
        if let Refusal::Store(e) = &r {
            tracing::error!(error = %e, "a portal page could not be served");
        }
        let now = self.state.store.clock().now().as_second();
        let (status, html) = problem_page(self.chrome("/", None, ""), &self.state.holder.config, &r, now, number);
        let mut resp = self.render(status, html.render());
        if matches!(r, Refusal::SessionEnded | Refusal::HandsChanged) {
            resp.headers_mut().append(header::SET_COOKIE, self.cookies.clear(SESSION_COOKIE));
        }
        resp
    }
}

/// The page that words a refusal, and its status. `now` (unix seconds) dates the limits; `number` is
/// offered a new code when a code failed.
fn problem_page(
    c: Chrome,
    config: &HolderConfig,
    r: &Refusal,
    now: i64,
    number: Option<PhoneNumber>,
) -> (StatusCode, ProblemPage) {
    let lang = c.lang;
    let after = |secs: i64| lang.moment(now + secs.max(1), &config.time_zone);
    let minutes = |secs: i64| ("minutes", (secs / 60).max(1).to_string());
    let (status, key, args): (StatusCode, &str, Vec<(&str, String)>) = match r {
        Refusal::ClientLimited { retry_after_secs, per_hour } => (
            StatusCode::TOO_MANY_REQUESTS,
            "client-limited",
            vec![("per_hour", per_hour.to_string()), ("when", after(*retry_after_secs))],
        ),
        Refusal::SendsLimited { retry_after_secs, per_hour, per_day } => (
            StatusCode::TOO_MANY_REQUESTS,
            "sends-limited",
            vec![
                ("per_hour", per_hour.to_string()),
                ("per_day", per_day.to_string()),
                ("when", after(*retry_after_secs)),
            ],
        ),
        Refusal::NumberCeiling { retry_after_secs, per_day } => (
            StatusCode::TOO_MANY_REQUESTS,
            "number-ceiling",
            vec![("per_day", per_day.to_string()), ("when", after(*retry_after_secs))],
        ),
        Refusal::Locked { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, "locked", vec![("when", after(*retry_after_secs))])
        }
        Refusal::NotCovered => (StatusCode::UNPROCESSABLE_ENTITY, "not-covered", vec![]),
        Refusal::WrongCode { .. } | Refusal::OutOfTries => (StatusCode::BAD_REQUEST, "out-of-tries", vec![]),
        Refusal::CodeExpired => (StatusCode::BAD_REQUEST, "code-expired", vec![minutes(config.otp.ttl_secs)]),
        Refusal::CodeStale => (StatusCode::BAD_REQUEST, "code-stale", vec![]),
        Refusal::SessionEnded => (StatusCode::UNAUTHORIZED, "session-ended", vec![minutes(config.session_secs)]),
        Refusal::HandsChanged => (StatusCode::UNAUTHORIZED, "hands-changed", vec![]),
        Refusal::NobodyHolds => (StatusCode::NOT_FOUND, "nobody-holds", vec![]),
        Refusal::NothingToUnbind | Refusal::NotStale(_) => (StatusCode::CONFLICT, "already-changed", vec![]),
        Refusal::Invalid(_) | Refusal::TooManyInstitutions { .. } => (StatusCode::BAD_REQUEST, "bad-form", vec![]),
        Refusal::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", vec![]),
    };
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // What to offer next: a new code for the same number, or the way back.
    let resend = match r {
        Refusal::WrongCode { .. } | Refusal::OutOfTries | Refusal::CodeExpired | Refusal::CodeStale => {
            number.map(|n| n.to_string())
        }
        _ => None,
    };
    let (action_href, action_label) = match r {
        Refusal::NothingToUnbind | Refusal::NotStale(_) => ("/institutions", "action-institutions"),
        Refusal::Store(_) => ("/", "action-try-again"),
        _ => ("/", "action-start"),
    };
    let page = ProblemPage {
        title: lang.t_args(&format!("{key}-title"), &args),
        body: lang.t_args(&format!("{key}-body"), &args),
        next: lang.t_args(&format!("{key}-next"), &args),
        c,
        resend,
        action_href,
        action_label,
    };
    (status, page)
}

/// Full-width digits and plus (typed with a Chinese input method) as ASCII; other characters as they are.
fn half_width(c: char) -> char {
    match c {
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        '＋' => '+',
        _ => c,
    }
}

/// A number as a person types it: spaces, dashes, dots and brackets are ignored (full-width ones too),
/// full-width digits are digits, and `00` stands for `+`. The country code is required (numlink serves
/// several countries).
pub fn typed_number(typed: &str) -> Option<PhoneNumber> {
    if typed.chars().count() > NUMBER_CHARS_MAX {
        return None;
    }
    let compact: String = typed
        .chars()
        .map(half_width)
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}' | '\u{3000}' | '－' | '（' | '）'))
        .collect();
    let e164 = match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    };
    PhoneNumber::parse(&e164).ok()
}

/// The code step's cookie: `digits.challenge.sentAt`.
struct CodeStep {
    number: PhoneNumber,
    challenge: String,
    sent_at: i64,
}

impl CodeStep {
    fn of(headers: &HeaderMap, cookies: Cookies) -> Option<CodeStep> {
        let mut parts = cookies.get(headers, CODE_COOKIE)?.split('.');
        let (Some(digits), Some(challenge), Some(sent), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let number = PhoneNumber::parse(&format!("+{digits}")).ok()?;
        let challenge_ok = !challenge.is_empty()
            && challenge.len() <= holder::CHALLENGE_ID_BYTES_MAX
            && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        challenge_ok.then(|| CodeStep { number, challenge: challenge.to_string(), sent_at: sent.parse().unwrap_or(0) })
    }

    fn cookie_value(&self) -> String {
        format!("{}.{}.{}", self.number.digits(), self.challenge, self.sent_at)
    }
}

// ---- pages ----

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    c: Chrome,
    typed: String,
    /// The message id of what is wrong with the typed number.
    error: Option<&'static str>,
    /// The message id of what just happened (signed out).
    notice: Option<&'static str>,
}

/// `GET /[?signed-out=1]`: the number form, or on to the institutions when signed in.
pub async fn start(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let ctx = Ctx::new(&state, &headers);
    if let Some(token) = ctx.cookies.get(&headers, SESSION_COOKIE)
        && holder::authenticate(&state, token).await.is_ok()
    {
        return see_other("/institutions");
    }
    let notice = Form::of_query(query.as_deref()).get("signed-out").map(|_| "signed-out-notice");
    let html = StartPage { c: ctx.chrome("/", None, ""), typed: String::new(), error: None, notice }.render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /code`: send a code to the number typed (or the same number again, from the code page).
pub async fn send_code(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: Result<Form, NotAForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let form = match ctx.posted(&headers, form) {
        Ok(f) => f,
        Err(page) => return page,
    };
    // The client's limit first, as the API counts it.
    let client_ip = client.map(|Extension(ClientAddr(ip))| ip);
    if let Err(r) = holder::client_allowed(&state, client_ip).await {
        return ctx.refused(r, None);
    }
    let typed = form.get("phone").unwrap_or("").trim();
    let Some(n) = typed_number(typed) else {
        let error = Some(if typed.is_empty() { "number-missing" } else { "number-invalid" });
        let typed: String = typed.chars().take(NUMBER_CHARS_MAX).collect();
        let html = StartPage { c: ctx.chrome("/", None, ""), typed, error, notice: None }.render();
        return ctx.render(StatusCode::BAD_REQUEST, html);
    };
    let now = state.store.clock().now().as_second();
    // Again for the same number too soon: the code page says how long to wait.
    if let Some(step) = CodeStep::of(&headers, ctx.cookies).filter(|s| s.number == n) {
        let wait = step.sent_at + state.holder.config.otp_resend_wait_secs - now;
        if wait > 0 {
            return code_page(&ctx, &step, now, Some(CodeAlert::Wait(wait)), StatusCode::TOO_MANY_REQUESTS);
        }
    }
    match holder::send_code(&state, client_ip, n).await {
        Ok(sent) => {
            let step = CodeStep { number: n, challenge: sent.challenge_id.into(), sent_at: now };
            let mut resp = see_other("/code");
            let cookie = ctx.cookies.set(CODE_COOKIE, &step.cookie_value(), Some(sent.expires_in_secs));
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err(r) => ctx.refused(r, Some(n)),
    }
}

/// What the code page says above its form.
enum CodeAlert {
    /// Not right; this many tries left.
    Wrong(u32),
    /// The code is six digits.
    Malformed,
    /// Another code in this many seconds.
    Wait(i64),
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    c: Chrome,
    number: String,
    /// Seconds before another code may be asked for.
    wait_secs: i64,
    /// What is wrong, already worded.
    alert: Option<String>,
    /// The countdown's words, with `{s}` for the seconds (the script fills it in).
    countdown: String,
    sent: String,
}

impl CodeAlert {
    fn words(&self, lang: Lang) -> String {
        match self {
            CodeAlert::Wrong(left) => lang.t_args("code-wrong", &[("left", &left.to_string())]),
            CodeAlert::Malformed => lang.t("code-malformed"),
            CodeAlert::Wait(secs) => lang.t_args("code-wait", &[("seconds", &secs.to_string())]),
        }
    }
}

fn code_page(ctx: &Ctx, step: &CodeStep, now: i64, alert: Option<CodeAlert>, status: StatusCode) -> Response {
    let config = &ctx.state.holder.config;
    let wait_secs = (step.sent_at + config.otp_resend_wait_secs - now).clamp(0, config.otp_resend_wait_secs);
    let html =
        CodePage::new(ctx.chrome("/code", None, ""), step.number, config.otp.ttl_secs, wait_secs, alert).render();
    ctx.render(status, html)
}

impl CodePage {
    fn new(c: Chrome, n: PhoneNumber, ttl_secs: i64, wait_secs: i64, alert: Option<CodeAlert>) -> CodePage {
        let lang = c.lang;
        let number = n.to_string();
        CodePage {
            sent: lang.t_args("code-sent", &[("number", &number), ("minutes", &(ttl_secs / 60).max(1).to_string())]),
            alert: alert.map(|a| a.words(lang)),
            countdown: lang.t_args("code-resend-countdown", &[("seconds", "{s}")]),
            number,
            wait_secs,
            c,
        }
    }
}

/// `GET /code`: the code form for the number a code was just sent to.
pub async fn code(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let Some(step) = CodeStep::of(&headers, ctx.cookies) else { return see_other("/") };
    code_page(&ctx, &step, state.store.clock().now().as_second(), None, StatusCode::OK)
}

/// `POST /session`: the code typed; a session on success.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let form = match ctx.posted(&headers, form) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(step) = CodeStep::of(&headers, ctx.cookies) else { return ctx.refused(Refusal::CodeExpired, None) };
    let now = state.store.clock().now().as_second();
    let code: String = form.get("code").unwrap_or("").chars().map(half_width).filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return code_page(&ctx, &step, now, Some(CodeAlert::Malformed), StatusCode::BAD_REQUEST);
    }
    match holder::sign_in(&state, step.number, &step.challenge, &code).await {
        Ok(session) => {
            let mut resp = see_other("/institutions");
            let h = resp.headers_mut();
            // A cookie of the browser's session: an expired token in it still meets the page that says
            // the session ended. The CSRF nonce is renewed with the session.
            h.append(header::SET_COOKIE, ctx.cookies.set(SESSION_COOKIE, &session.token, None));
            h.append(header::SET_COOKIE, ctx.cookies.clear(CODE_COOKIE));
            h.extend(Csrf::renewed().cookie(ctx.cookies).map(|c| (header::SET_COOKIE, c)));
            resp
        }
        Err(Refusal::WrongCode { attempts_left }) if attempts_left > 0 => {
            code_page(&ctx, &step, now, Some(CodeAlert::Wrong(attempts_left)), StatusCode::BAD_REQUEST)
        }
        Err(r) => ctx.refused(r, Some(step.number)),
    }
}

/// An unbind request as a row of the pages.
pub struct RequestRow {
    pub institution: String,
    /// `open`, `overdue`, `unbound` or `rejected`.
    pub state: &'static str,
    pub state_text: String,
    pub asked: String,
    pub deadline: String,
    pub resolved: Option<String>,
    /// For a rejection: why, in plain words.
    pub reason: Option<String>,
}

fn reason_text(lang: Lang, r: RejectReason) -> String {
    lang.t(match r {
        RejectReason::CustomerReverified => "reason-customer-reverified",
        RejectReason::LegalHold => "reason-legal-hold",
        RejectReason::FraudInvestigation => "reason-fraud-investigation",
        RejectReason::NoSuchBinding => "reason-no-such-binding",
    })
}

impl RequestRow {
    fn new(lang: Lang, tz: &jiff::tz::TimeZone, r: &UnbindRequest, today: Day) -> RequestRow {
        let state = match r.state {
            UnbindState::Open if r.overdue(today) => "overdue",
            UnbindState::Open => "open",
            UnbindState::Unbound => "unbound",
            UnbindState::Rejected => "rejected",
        };
        RequestRow {
            institution: r.institution_name.clone(),
            state,
            state_text: lang.t(&format!("state-{state}")),
            asked: lang.moment(r.created_unix, tz),
            deadline: lang.day(r.deadline),
            resolved: r.resolved_unix.map(|t| lang.moment(t, tz)),
            reason: r.reason.map(|x| reason_text(lang, x)),
        }
    }
}

/// An institution on the list.
pub struct InstitutionRow {
    pub id: String,
    pub name: String,
    pub bindings: String,
    /// Still to be asked: it gets a box to tick.
    pub askable: bool,
    pub request: Option<RequestRow>,
}

#[derive(Template)]
#[template(path = "institutions.html")]
struct InstitutionsPage {
    c: Chrome,
    rows: Vec<InstitutionRow>,
    askable: usize,
    alert: Option<String>,
}

/// Whether an institution can be asked now: it still holds a binding made before the tenure, and no
/// request to it stands (`UnbindRequest::stands`: open, or a rejection still in force), which asking
/// again would only give back.
fn askable(i: &StaleHolder, now_unix: i64) -> bool {
    i.bindings > 0 && !i.request.as_ref().is_some_and(|r| r.stands(now_unix))
}

async fn institutions_page(ctx: &Ctx, h: Holder, alert: Option<String>, status: StatusCode) -> Response {
    let lang = ctx.lang;
    let now = ctx.state.store.clock().now().as_second();
    let (stale, today) = match holder::institutions(&ctx.state, h).await {
        Ok(v) => v,
        Err(r) => return ctx.refused(r, None),
    };
    let rows: Vec<InstitutionRow> = stale
        .into_iter()
        .map(|i| InstitutionRow {
            askable: askable(&i, now),
            bindings: lang.t_args("institution-bindings", &[("count", &i.bindings.to_string())]),
            request: i.request.as_ref().map(|r| RequestRow::new(lang, &ctx.state.holder.config.time_zone, r, today)),
            id: i.institution_id,
            name: i.institution_name,
        })
        .collect();
    let askable = rows.iter().filter(|r| r.askable).count();
    let html =
        InstitutionsPage { c: ctx.chrome("/institutions", Some(h.0), "institutions"), rows, askable, alert }.render();
    ctx.render(status, html)
}

/// `GET /institutions`: who holds a binding made before the tenure, and the state of any request.
pub async fn institutions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    match ctx.holder(&headers).await {
        Ok(h) => institutions_page(&ctx, h, None, StatusCode::OK).await,
        Err(page) => page,
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    c: Chrome,
    /// (id, name) of each institution to be asked.
    chosen: Vec<(String, String)>,
    intro: String,
    deadline: String,
}

/// `POST /unbind/confirm`: the institutions chosen (the boxes ticked, or all that can be asked), to
/// confirm before they are asked. The confirmation names each, and asks exactly those.
pub async fn confirm_unbind(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form, NotAForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let (h, form) = match ctx.posted(&headers, form) {
        Ok(form) => match ctx.holder(&headers).await {
            Ok(h) => (h, form),
            Err(page) => return page,
        },
        Err(page) => return page,
    };
    let all = form.get("all").is_some();
    let ticked = form.all("institution");
    if !all && ticked.is_empty() {
        return institutions_page(&ctx, h, Some(ctx.lang.t("choose-one")), StatusCode::BAD_REQUEST).await;
    }
    let (stale, today) = match holder::institutions(&state, h).await {
        Ok(v) => v,
        Err(r) => return ctx.refused(r, None),
    };
    let now = state.store.clock().now().as_second();
    let chosen: Vec<(String, String)> = stale
        .into_iter()
        .filter(|i| askable(i, now) && (all || ticked.contains(&i.institution_id)))
        .map(|i| (i.institution_id, i.institution_name))
        .collect();
    if chosen.is_empty() {
        return ctx.refused(Refusal::NothingToUnbind, None);
    }
    let lang = ctx.lang;
    let html = ConfirmPage {
        c: ctx.chrome("/institutions", Some(h.0), "institutions"),
        intro: lang.t_args("confirm-intro", &[("count", &chosen.len().to_string())]),
        deadline: lang.t_args("confirm-deadline", &[("deadline", &lang.day(holder::deadline_for(&state, h.0, today)))]),
        chosen,
    }
    .render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /unbind`: ask the institutions confirmed; on to the status page, which says how many were
/// asked now (none when the form was sent twice: the requests stand already).
pub async fn unbind(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let (h, form) = match ctx.posted(&headers, form) {
        Ok(form) => match ctx.holder(&headers).await {
            Ok(h) => (h, form),
            Err(page) => return page,
        },
        Err(page) => return page,
    };
    let ids = form.all("institution");
    if ids.is_empty() {
        return institutions_page(&ctx, h, Some(ctx.lang.t("choose-one")), StatusCode::BAD_REQUEST).await;
    }
    match holder::ask_unbind(&state, h, Some(ids)).await {
        Ok(asked) if asked.created > 0 => see_other(&format!("/requests?asked={}", asked.created)),
        Ok(_) => see_other("/requests"),
        Err(r) => ctx.refused(r, None),
    }
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    c: Chrome,
    rows: Vec<RequestRow>,
    notice: Option<String>,
}

/// `GET /requests[?asked=N]`: each request with its deadline, overdue marked, its outcome and any
/// reason; after asking, how many were asked.
pub async fn requests(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let h = match ctx.holder(&headers).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let (requests, today) = match holder::requests(&state, h).await {
        Ok(v) => v,
        Err(r) => return ctx.refused(r, None),
    };
    let lang = ctx.lang;
    let tz = &state.holder.config.time_zone;
    let rows = requests.iter().map(|r| RequestRow::new(lang, tz, r, today)).collect();
    let asked = Form::of_query(query.as_deref()).get("asked").and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0);
    let notice = asked.map(|n| lang.t_args("asked-notice", &[("count", &n.to_string())]));
    let html = RequestsPage { c: ctx.chrome("/requests", Some(h.0), "requests"), rows, notice }.render();
    ctx.render(StatusCode::OK, html)
}

#[derive(Template)]
#[template(path = "proof.html")]
struct ProofPage {
    c: Chrome,
    token: String,
    number: String,
    held_since: String,
    expires: String,
    issuer: String,
    /// The download: the proof as a `data:` URL (nothing more is fetched).
    download: String,
    /// The QR code of the verify link, as SVG.
    qr_svg: String,
    verify_link: String,
}

/// Where people reach numlink: the configured public address, else this request's host.
fn site_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.holder.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The QR code of `text` as an SVG element to inline (dark on light, a quiet zone around).
pub fn qr_svg(text: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The XML declaration has no place inside HTML.
    Some(svg.split_once("?>").map_or(svg.clone(), |(_, rest)| rest.to_string()))
}

/// `GET /proof`: a signed proof of tenure, what it states, to copy, download, or show as a QR code.
pub async fn proof(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let h = match ctx.holder(&headers).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let p = match holder::proof(&state, h).await {
        Ok(p) => p,
        Err(r) => return ctx.refused(r, None),
    };
    let lang = ctx.lang;
    let verify_link = format!("{}/verify?token={}", site_url(&state, &headers), percent_encode(&p.token));
    let html = ProofPage {
        c: ctx.chrome("/proof", Some(p.number), "proof"),
        number: p.number.to_string(),
        held_since: lang.day(p.held_since),
        expires: lang.moment(p.expires_at, &state.holder.config.time_zone),
        issuer: p.issuer,
        download: format!("data:text/plain;charset=utf-8,{}", percent_encode(&p.token)),
        qr_svg: qr_svg(&verify_link).unwrap_or_default(),
        verify_link,
        token: p.token,
    }
    .render();
    ctx.render(StatusCode::OK, html)
}

pub struct LookupRow {
    pub institution: String,
    pub at: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "lookups.html")]
struct LookupsPage {
    c: Chrome,
    rows: Vec<LookupRow>,
    intro: String,
}

/// `GET /lookups`: which institutions looked the number up, when, and how.
pub async fn lookups(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers);
    let h = match ctx.holder(&headers).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let lookups = match holder::lookups(&state, h).await {
        Ok(l) => l,
        Err(r) => return ctx.refused(r, None),
    };
    let lang = ctx.lang;
    let rows = lookups
        .into_iter()
        .map(|l| LookupRow {
            at: lang.stored_moment(&l.at, &state.holder.config.time_zone),
            kind: lang.t(match crate::routes::holder::lookup_kind(&l.action) {
                "kyc_match" => "lookup-kyc-match",
                _ => "lookup-check",
            }),
            institution: l.institution_name,
        })
        .collect();
    let intro = lang.t_args("lookups-intro", &[("days", &state.holder.config.lookups_days.to_string())]);
    let html = LookupsPage { c: ctx.chrome("/lookups", Some(h.0), "lookups"), rows, intro }.render();
    ctx.render(StatusCode::OK, html)
}

/// `POST /sign-out`: forget the session (and renew the CSRF nonce).
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, form: Result<Form, NotAForm>) -> Response {
    let ctx = Ctx::new(&state, &headers);
    if let Err(page) = ctx.posted(&headers, form) {
        return page;
    }
    let mut resp = see_other("/?signed-out=1");
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, ctx.cookies.clear(SESSION_COOKIE));
    h.extend(Csrf::renewed().cookie(ctx.cookies).map(|c| (header::SET_COOKIE, c)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_read_as_people_type_it() {
        for typed in ["+86 138 0013 8000", "+86-138-0013-8000", "0086 13800138000", "+86 (138) 0013.8000"] {
            assert_eq!(typed_number(typed).map(|n| n.to_string()).as_deref(), Some("+8613800138000"), "{typed:?}");
        }
        for typed in ["", "13800138000", "+86 138 abc", "+", &"1".repeat(41)] {
            assert_eq!(typed_number(typed), None, "{typed:?}");
        }
    }

    /// Every page, every state and every refusal, rendered in both languages: none asks for a message
    /// a catalogue lacks (the catalogues' own test checks they hold the same messages).
    #[test]
    fn every_page_and_state_renders_in_both_languages() {
        use crate::web::i18n::tests::MISSING;
        let n = PhoneNumber::parse("+8613800138000").unwrap();
        let day = Day::parse("2026-12-07").unwrap();
        let refusals = || {
            vec![
                Refusal::Invalid("x".into()),
                Refusal::ClientLimited { retry_after_secs: 60, per_hour: 20 },
                Refusal::SendsLimited { retry_after_secs: 60, per_hour: 5, per_day: 10 },
                Refusal::NumberCeiling { retry_after_secs: 60, per_day: 30 },
                Refusal::Locked { retry_after_secs: 86_400 },
                Refusal::NotCovered,
                Refusal::WrongCode { attempts_left: 0 },
                Refusal::CodeExpired,
                Refusal::OutOfTries,
                Refusal::CodeStale,
                Refusal::SessionEnded,
                Refusal::HandsChanged,
                Refusal::NobodyHolds,
                Refusal::NothingToUnbind,
                Refusal::NotStale(vec!["ins_x".into()]),
                Refusal::TooManyInstitutions { named: 101, max: 100 },
                Refusal::Store(store::StoreError::closed()),
            ]
        };
        let mut pages = Vec::new();
        for lang in [Lang::ZhCn, Lang::En] {
            let c = || Chrome { signed_in: Some(n.to_string()), current: "institutions", ..Chrome::new(lang, "/") };
            for r in refusals() {
                pages.push(problem_page(c(), &HolderConfig::default(), &r, 0, Some(n)).1.render().unwrap());
            }
            for (error, notice) in
                [(None, Some("signed-out-notice")), (Some("number-missing"), None), (Some("number-invalid"), None)]
            {
                pages.push(StartPage { c: c(), typed: String::new(), error, notice }.render().unwrap());
            }
            let request = |state, reason| {
                let r = UnbindRequest {
                    id: store::UnbindRequestId::parse("unb_0123456789abcdef0123").unwrap(),
                    institution_id: "ins_0123456789abcdef0123".into(),
                    institution_name: "Bank".into(),
                    state,
                    reason,
                    deadline: day,
                    attestation_id: String::new(),
                    created_at: String::new(),
                    created_unix: 0,
                    resolved_at: None,
                    resolved_unix: Some(1),
                    bindings: vec![],
                };
                RequestRow::new(lang, &jiff::tz::TimeZone::UTC, &r, Day::parse("2026-12-31").unwrap())
            };
            let mut rows = vec![request(UnbindState::Open, None), request(UnbindState::Unbound, None)];
            rows.extend(RejectReason::ALL.iter().map(|&why| request(UnbindState::Rejected, Some(why))));
            for alert in [CodeAlert::Wrong(3), CodeAlert::Malformed, CodeAlert::Wait(30)] {
                pages.push(CodePage::new(c(), n, 600, 10, Some(alert)).render().unwrap());
            }
            for (rows, askable) in [(vec![], 0), (vec![("ins_a", 2, true)], 1), (vec![("ins_a", 1, false)], 0)] {
                let rows = rows
                    .into_iter()
                    .map(|(id, count, askable): (&str, u32, bool)| InstitutionRow {
                        id: id.into(),
                        name: "Bank".into(),
                        bindings: lang.t_args("institution-bindings", &[("count", &count.to_string())]),
                        askable,
                        request: (!askable).then(|| request(UnbindState::Rejected, Some(RejectReason::LegalHold))),
                    })
                    .collect();
                let alert = Some(lang.t("choose-one"));
                pages.push(InstitutionsPage { c: c(), rows, askable, alert }.render().unwrap());
            }
            for count in [1, 3] {
                pages.push(
                    ConfirmPage {
                        c: c(),
                        chosen: vec![("ins_a".into(), "Bank".into()); count],
                        intro: lang.t_args("confirm-intro", &[("count", &count.to_string())]),
                        deadline: lang.t_args("confirm-deadline", &[("deadline", &lang.day(day))]),
                    }
                    .render()
                    .unwrap(),
                );
                let notice = Some(lang.t_args("asked-notice", &[("count", &count.to_string())]));
                pages.push(RequestsPage { c: c(), rows: vec![], notice }.render().unwrap());
            }
            pages.push(RequestsPage { c: c(), rows, notice: None }.render().unwrap());
            pages.push(
                ProofPage {
                    c: c(),
                    token: "eyJ".into(),
                    number: n.to_string(),
                    held_since: lang.day(day),
                    expires: lang.moment(0, &jiff::tz::TimeZone::UTC),
                    issuer: "numlink".into(),
                    download: String::new(),
                    qr_svg: qr_svg("x").unwrap(),
                    verify_link: String::new(),
                }
                .render()
                .unwrap(),
            );
            for rows in [
                vec![],
                vec![LookupRow {
                    institution: "Bank".into(),
                    at: lang.moment(0, &jiff::tz::TimeZone::UTC),
                    kind: lang.t("lookup-check"),
                }],
            ] {
                let intro = lang.t_args("lookups-intro", &[("days", "180")]);
                pages.push(LookupsPage { c: c(), rows, intro }.render().unwrap());
            }
            lang.t("lookup-kyc-match");
        }
        let missing = MISSING.with_borrow(|m| m.clone());
        assert!(missing.is_empty(), "messages no catalogue has: {missing:?}");
        // Plural forms are chosen by the count.
        assert_eq!(Lang::En.t_args("institution-bindings", &[("count", "1")]), "1 account");
        assert_eq!(Lang::En.t_args("institution-bindings", &[("count", "2")]), "2 accounts");
        assert!(pages.iter().all(|p| !p.contains("{$") && !p.contains("{ $")), "an argument left unfilled");
    }

    #[test]
    fn a_qr_code_is_inline_svg() {
        let svg = qr_svg("http://localhost/verify?token=eyJ").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(!svg.contains("<?xml"));
    }
}
