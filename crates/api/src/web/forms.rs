//! What the pages' forms stand on: cookies, the CSRF token every form carries, and reading a posted
//! form within a limit.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict` and for the whole site; when numlink is reached over https
//! they are also `Secure` and named with the `__Host-` prefix, so that no other host of the domain can
//! plant one (a session, or a CSRF nonce).
//!
//! The CSRF defence is a signed double-submit: a random nonce in a cookie, and in each form a MAC of it
//! under a key of the server's. A form posted from another site has neither the cookie (SameSite) nor a
//! token it could compute (the MAC), and one posted without the token is refused. The nonce is renewed
//! when a session begins or ends.

use axum::extract::FromRequest;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use store::HashKey;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// The CSRF nonce's cookie.
pub const CSRF_COOKIE: &str = "nl_csrf";

/// The value of the cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The pages' cookies, as numlink is reached (over https or not).
#[derive(Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    pub fn new(secure: bool) -> Cookies {
        Cookies { secure }
    }

    /// A cookie's name: `__Host-` before it over https.
    pub fn name(self, base: &str) -> String {
        if self.secure { format!("__Host-{base}") } else { base.to_string() }
    }

    /// The value of the cookie `base` in a request.
    pub fn get<'a>(self, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
        cookie(headers, &self.name(base))
    }

    /// A `Set-Cookie` for `base`: kept `max_age` seconds, or until the browser closes when `None`.
    pub fn set(self, base: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let max_age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
        let secure = if self.secure { "; Secure" } else { "" };
        let name = self.name(base);
        HeaderValue::from_str(&format!("{name}={value}; Path=/{max_age}; HttpOnly; SameSite=Strict{secure}"))
            .expect("cookie values are made of safe characters")
    }

    /// A `Set-Cookie` that removes `base`.
    pub fn clear(self, base: &str) -> HeaderValue {
        self.set(base, "", Some(0))
    }
}

/// The CSRF state of a request: the nonce of its cookie, or a new one to set.
pub struct Csrf {
    nonce: String,
    /// The nonce is new: the response sets its cookie.
    fresh: bool,
}

impl Csrf {
    /// The request's nonce, or a new one.
    pub fn of(headers: &HeaderMap, cookies: Cookies) -> Csrf {
        match cookies.get(headers, CSRF_COOKIE).filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
            Some(n) => Csrf { nonce: n.to_string(), fresh: false },
            None => Csrf::renewed(),
        }
    }

    /// A new nonce (when a session begins or ends).
    pub fn renewed() -> Csrf {
        Csrf { nonce: hex::encode(store::random_bytes::<16>()), fresh: true }
    }

    /// The token a form carries.
    pub fn token(&self, key: &HashKey) -> String {
        token_of(key, &self.nonce)
    }

    /// The `Set-Cookie` of the nonce if it is new (kept a year: it proves nothing by itself).
    pub fn cookie(&self, cookies: Cookies) -> Option<HeaderValue> {
        self.fresh.then(|| cookies.set(CSRF_COOKIE, &self.nonce, Some(31_536_000)))
    }
}

fn token_of(key: &HashKey, nonce: &str) -> String {
    hex::encode(&key.mac(format!("csrf|{nonce}").as_bytes())[..16])
}

/// Whether a posted form's token matches the request's CSRF cookie.
pub fn csrf_ok(key: &HashKey, headers: &HeaderMap, cookies: Cookies, form: &Form) -> bool {
    let Some(nonce) = cookies.get(headers, CSRF_COOKIE) else { return false };
    let Some(sent) = form.get("csrf") else { return false };
    let want = token_of(key, nonce);
    bool::from(sent.as_bytes().ct_eq(want.as_bytes()))
}

/// A posted `application/x-www-form-urlencoded` body, every field in order (a key may repeat: several
/// boxes ticked).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// The fields of a query string (`a=1&b=2`), read leniently: a page's query only says what to show.
    pub fn of_query(query: Option<&str>) -> Form {
        Form(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
}

/// Why a posted body is not a form the pages read: the status to answer with. The handlers take
/// `Result<Form, NotAForm>` and answer with a page; alone, it answers with the status.
#[derive(Debug)]
pub struct NotAForm(pub StatusCode);

impl axum::response::IntoResponse for NotAForm {
    fn into_response(self) -> axum::response::Response {
        self.0.into_response()
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = NotAForm;

    /// At most `form_bytes_max` bytes of `application/x-www-form-urlencoded`.
    async fn from_request(req: Request<axum::body::Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim() == "application/x-www-form-urlencoded"));
        if !is_form {
            return Err(NotAForm(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = axum::body::to_bytes(req.into_body(), state.limits.form_bytes_max)
            .await
            .map_err(|_| NotAForm(StatusCode::PAYLOAD_TOO_LARGE))?;
        Ok(Form(form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_by_its_whole_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("nl_csrf_x=1; nl_csrf=abc; lang=en; __Host-nl_csrf=def"));
        assert_eq!(cookie(&h, "nl_csrf"), Some("abc"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "nl"), None);
        assert_eq!(Cookies::new(true).get(&h, "nl_csrf"), Some("def"), "over https, only the __Host- one");
    }

    #[test]
    fn cookies_over_https_are_secure_and_host_only() {
        let set = Cookies::new(true).set("nl_session", "v", None).to_str().unwrap().to_string();
        assert_eq!(set, "__Host-nl_session=v; Path=/; HttpOnly; SameSite=Strict; Secure");
        let set = Cookies::new(false).set("nl_code", "v", Some(600)).to_str().unwrap().to_string();
        assert_eq!(set, "nl_code=v; Path=/; Max-Age=600; HttpOnly; SameSite=Strict");
    }

    #[test]
    fn a_token_is_good_only_with_its_own_cookie() {
        let key = HashKey::generate();
        let plain = Cookies::new(false);
        let csrf = Csrf::of(&HeaderMap::new(), plain);
        assert!(csrf.fresh && csrf.cookie(plain).is_some());
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("nl_csrf={}", csrf.nonce)).unwrap());
        let form = |t: &str| Form(vec![("csrf".into(), t.into())]);
        assert!(csrf_ok(&key, &h, plain, &form(&csrf.token(&key))));
        assert!(!csrf_ok(&key, &h, plain, &form("")));
        assert!(!csrf_ok(&key, &h, plain, &form(&Csrf::renewed().token(&key))));
        assert!(!csrf_ok(&key, &HeaderMap::new(), plain, &form(&csrf.token(&key))), "no cookie");
        assert!(!csrf_ok(&key, &h, plain, &Form(vec![])), "no token");
        assert!(!csrf_ok(&key, &h, Cookies::new(true), &form(&csrf.token(&key))), "not the __Host- cookie");
        assert!(!Csrf::of(&h, plain).fresh, "the request's own nonce is kept");
    }
}
