//! Pages for people, served by the same server as the API: rendered on the server from templates
//! (`crates/api/templates/`, compiled in by askama), every string from the message catalogues
//! (`i18n`), no script, assets served by numlink itself. Each page answers with a strict
//! Content-Security-Policy, no referrer, and no framing.
//!
//! `GET /verify` is public: a bank clerk pastes a proof of tenure, or opens the link its QR code holds,
//! and sees whether numlink issued it and what it states, checked against numlink's published keys
//! (the same `attest::verify` the command line uses).

pub mod console;
pub mod forms;
pub mod i18n;
pub mod portal;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::attest::VerifyError;
use crate::state::AppState;
use forms::{Cookies, Csrf, Form, NotAForm};
pub use i18n::Lang;

/// Bytes of a pasted proof of tenure read at most (one is about 500).
const TOKEN_BYTES_MAX: usize = 4096;

/// What every page answers with besides its body: only numlink's own stylesheet and script, no inline
/// script, requests from the script (a job's progress) and forms only to numlink, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

crate::route_table! {
    /// Every page's route: (method, path), as the router serves it.
    PAGE_ROUTES, page_routes;
    get "/" => portal::start,
    post "/code" => portal::send_code,
    get "/code" => portal::code,
    post "/session" => portal::sign_in,
    get "/institutions" => portal::institutions,
    post "/unbind/confirm" => portal::confirm_unbind,
    post "/unbind" => portal::unbind,
    get "/requests" => portal::requests,
    get "/proof" => portal::proof,
    get "/lookups" => portal::lookups,
    post "/sign-out" => portal::sign_out,
    get "/console" => console::start,
    post "/console/sign-in" => console::sign_in,
    post "/console/sign-out" => console::sign_out,
    get "/console/home" => console::role_home,
    get "/console/requests" => console::queue,
    get "/console/requests/{id}" => console::request,
    post "/console/requests/{id}/resolve" => console::resolve,
    get "/console/notifications" => console::notifications,
    post "/console/notifications/ack" => console::ack_notifications,
    get "/console/endpoints" => console::endpoints,
    post "/console/endpoints" => console::add_endpoint,
    get "/console/endpoints/{id}" => console::endpoint,
    post "/console/endpoints/{id}/rotate" => console::rotate_endpoint,
    post "/console/endpoints/{id}/test" => console::test_endpoint,
    post "/console/endpoints/{id}/enable" => console::enable_endpoint,
    post "/console/endpoints/{id}/deliveries/{notification}/replay" => console::replay_delivery,
    get "/console/endpoints/{id}/delete" => console::confirm_delete_endpoint,
    post "/console/endpoints/{id}/delete" => console::delete_endpoint,
    get "/console/bindings" => console::bindings,
    get "/console/bindings/{id}/delete" => console::confirm_delete_binding,
    post "/console/bindings/{id}/delete" => console::delete_binding,
    get "/console/sms" => console::sms_gateway,
    post "/console/sms" => console::set_gateway,
    post "/console/sms/test" => console::test_gateway,
    get "/console/files" => console::files,
    post "/console/files/{kind}" => console::upload,
    get "/console/jobs/{id}" => console::job,
    get "/console/jobs/{id}/progress" => console::job_progress,
    get "/console/jobs/{id}/rejections.csv" => console::rejections,
    get "/console/jobs/{id}/result.csv" => console::answers,
    get "/console/report" => console::report,
    get "/console/report.csv" => console::report_csv,
    get "/verify" => verify,
    get "/lang/{tag}" => switch_lang,
    get "/assets/portal.css" => stylesheet,
    get "/assets/portal.js" => script,
}

/// The pages' routes.
pub fn router(state: AppState) -> axum::Router {
    page_routes().with_state(state)
}

/// The page's language, from the request.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let cookie = forms::cookie(headers, "lang");
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    Lang::negotiate(cookie, accept)
}

/// What every page's frame needs: its language, its address (for the language switch to come back
/// to), the form token, and the signed-in number if any (for the navigation).
pub struct Chrome {
    pub lang: Lang,
    /// This page's address, percent-encoded.
    pub back: String,
    pub csrf: String,
    /// The holder's number, when signed in.
    pub signed_in: Option<String>,
    /// The navigation entry of this page.
    pub current: &'static str,
    /// The signed-in participant's name and role, on a console page.
    pub console: Option<(String, store::Role)>,
}

impl Chrome {
    pub fn new(lang: Lang, back: &str) -> Chrome {
        Chrome { lang, back: percent_encode(back), csrf: String::new(), signed_in: None, current: "", console: None }
    }

    /// `aria-current="page"` for the navigation entry `entry` on its own page.
    pub fn is(&self, entry: &str) -> bool {
        self.current == entry
    }
}

/// A page request's frame: its language, its cookies and CSRF state, and the server's state.
pub struct Ctx {
    pub lang: Lang,
    pub cookies: Cookies,
    pub csrf: Csrf,
    pub state: AppState,
}

impl Ctx {
    pub fn new(state: &AppState, headers: &HeaderMap) -> Ctx {
        let cookies = Cookies::new(state.holder.config.secure_cookies());
        Ctx { lang: lang_of(headers), csrf: Csrf::of(headers, cookies), cookies, state: state.clone() }
    }

    /// The frame of a page at `back`: a holder's number and navigation entry for the portal's pages.
    pub fn chrome(&self, back: &str, signed_in: Option<domain::PhoneNumber>, current: &'static str) -> Chrome {
        Chrome {
            csrf: self.csrf.token(&self.state.holder.session_key),
            signed_in: signed_in.map(|n| n.to_string()),
            current,
            ..Chrome::new(self.lang, back)
        }
    }

    /// A rendered page, with the CSRF cookie when it is new.
    pub fn render(&self, status: StatusCode, html: Result<String, askama::Error>) -> Response {
        let mut resp = page(self.lang, status, html);
        if let Some(c) = self.csrf.cookie(self.cookies) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    /// A page that says what went wrong (`{key}-title`, `-body`, `-next` in the catalogues) and offers
    /// one way on.
    pub fn problem(&self, status: StatusCode, key: &str, action: (&'static str, &'static str)) -> Response {
        self.problem_in(self.chrome("/", None, ""), status, key, action)
    }

    /// As `problem`, in the frame `c` (a console page keeps its navigation).
    pub fn problem_in(
        &self,
        c: Chrome,
        status: StatusCode,
        key: &str,
        action: (&'static str, &'static str),
    ) -> Response {
        let lang = self.lang;
        let html = ProblemPage {
            c,
            title: lang.t(&format!("{key}-title")),
            body: lang.t(&format!("{key}-body")),
            next: lang.t(&format!("{key}-next")),
            resend: None,
            action_href: action.0,
            action_label: action.1,
        }
        .render();
        self.render(status, html)
    }

    /// A posted form whose CSRF token is good, or the page to answer instead: a body that is no form
    /// (415, 413), or a form without its token (403).
    // The page is the answer a handler gives at once, not an error carried up: it is not boxed.
    #[allow(clippy::result_large_err)]
    pub fn posted(&self, headers: &HeaderMap, form: Result<Form, NotAForm>) -> Result<Form, Response> {
        self.posted_from(headers, form, ("/", "action-start"))
    }

    /// As `posted`, the refusal's page leading back to `home` (a path and its link's message id).
    #[allow(clippy::result_large_err)]
    pub fn posted_from(
        &self,
        headers: &HeaderMap,
        form: Result<Form, NotAForm>,
        home: (&'static str, &'static str),
    ) -> Result<Form, Response> {
        let form = form.map_err(|NotAForm(status)| self.problem(status, "bad-form", home))?;
        if !forms::csrf_ok(&self.state.holder.session_key, headers, self.cookies, &form) {
            return Err(self.problem(StatusCode::FORBIDDEN, "csrf", home));
        }
        Ok(form)
    }
}

/// The page that says what went wrong and what to do next.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub c: Chrome,
    pub title: String,
    pub body: String,
    pub next: String,
    /// Offer a new code to this number.
    pub resend: Option<String>,
    pub action_href: &'static str,
    pub action_label: &'static str,
}

/// A redirect after a form (303: the browser follows with a GET), with the pages' headers.
pub fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(to).expect("a path of this site"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A rendered page with the headers every page has.
fn page(lang: Lang, status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let body = match html {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    resp
}

/// `s` with every byte but the unreserved ones percent-encoded (RFC 3986), for a query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a proof states, in the page's language.
pub struct ShownClaims {
    pub number: String,
    pub held_since: String,
    pub expires: String,
    pub issuer: String,
}

pub enum VerifyOutcome {
    Valid(ShownClaims),
    /// The message id of why not.
    Invalid(&'static str),
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    c: Chrome,
    token: String,
    outcome: Option<VerifyOutcome>,
}

/// The message that says why a proof does not verify.
fn why(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Malformed(_) => "verify-why-malformed",
        VerifyError::UnknownKey(_) | VerifyError::BadKey(_) => "verify-why-unknown-key",
        VerifyError::BadSignature => "verify-why-bad-signature",
        VerifyError::Expired(_) => "verify-why-expired",
        VerifyError::WrongIssuer { .. } => "verify-why-wrong-issuer",
    }
}

/// The verdict on a proof of tenure now, against numlink's own published keys and issuer, worded in
/// `lang`.
pub async fn check_proof(state: &AppState, lang: Lang, token: &str) -> Result<VerifyOutcome, store::StoreError> {
    check_proof_at(state, lang, token, state.store.clock().now().as_second()).await
}

/// The verdict on a proof of tenure as of `at` (unix seconds): an institution judges the proof sent
/// with a request as of when it was sent, not after it has expired on the way.
pub async fn check_proof_at(
    state: &AppState,
    lang: Lang,
    token: &str,
    at: i64,
) -> Result<VerifyOutcome, store::StoreError> {
    let keys = state.store.attestation_keys().await?;
    let now = at;
    let issuer = state.holder.config.issuer.as_str();
    Ok(match crate::attest::verify(token, &crate::attest::jwks(&keys), now, Some(issuer)) {
        Ok(c) => VerifyOutcome::Valid(ShownClaims {
            held_since: domain::Day::parse(&c.held_since).map_or(c.held_since.clone(), |d| lang.day(d)),
            expires: lang.moment(c.exp, &state.holder.config.time_zone),
            number: c.phone_number,
            issuer: c.iss,
        }),
        Err(e) => VerifyOutcome::Invalid(why(&e)),
    })
}

/// `GET /verify[?token=…]`: the form, and the verdict on a proof if one is given.
pub async fn verify(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let lang = lang_of(&headers);
    let query = forms::Form::of_query(query.as_deref());
    let token: String = query.get("token").unwrap_or_default().trim().chars().take(TOKEN_BYTES_MAX).collect();
    let outcome = if token.is_empty() {
        None
    } else {
        match check_proof(&state, lang, &token).await {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the published keys");
                return (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response();
            }
        }
    };
    let back =
        if token.is_empty() { "/verify".to_string() } else { format!("/verify?token={}", percent_encode(&token)) };
    let html = VerifyPage { c: Chrome::new(lang, &back), token, outcome }.render();
    page(lang, StatusCode::OK, html)
}

/// Whether `back` is a path of this site to send a browser back to: it starts with one `/`, and holds
/// only the characters of a path and query (no space, tab, newline or backslash, which browsers drop or
/// turn into `/`, so that `/\t/evil.example` would lead to another site).
pub fn local_path(back: &str) -> bool {
    back.starts_with('/')
        && !back.starts_with("//")
        && back.len() <= 2 * TOKEN_BYTES_MAX
        && back.bytes().all(|b| b.is_ascii_alphanumeric() || b"/?=&%-._~+".contains(&b))
}

/// `GET /lang/{tag}?back=/path`: the language switch. Remembers the choice in a cookie for a year and
/// goes back to the page it was chosen on (a path of this site only; else the portal's first page).
pub async fn switch_lang(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = Lang::from_tag(&tag).unwrap_or(Lang::ZhCn);
    let query = forms::Form::of_query(query.as_deref());
    let back = query.get("back").filter(|b| local_path(b)).unwrap_or("/").to_string();
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&back) {
        h.insert(header::LOCATION, location);
    }
    let secure = if state.holder.config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}", lang.tag());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// `GET /assets/portal.css`: the pages' one stylesheet, compiled in.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../assets/portal.css"),
    )
        .into_response()
}

/// `GET /assets/portal.js`: the little script that improves the pages (a resend countdown, copy to
/// the clipboard); every form works without it.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../assets/portal.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_of_this_site_is_gone_back_to() {
        for ok in ["/", "/verify", "/verify?token=eyJ.a-b_c", "/requests?asked=2", "/%E4%B8%AD"] {
            assert!(local_path(ok), "{ok}");
        }
        for bad in [
            "",
            "verify",
            "//evil.example/x",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "https://evil.example/",
            "/\\/evil",
            "/\r\n/x",
        ] {
            assert!(!local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_query_value_is_percent_encoded() {
        assert_eq!(percent_encode("/verify?token=a.b"), "%2Fverify%3Ftoken%3Da.b");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
    }
}
