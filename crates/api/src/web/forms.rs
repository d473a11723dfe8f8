//! What the pages' forms stand on: cookies, the CSRF token every form carries, and reading a posted
//! form within a limit.
//!
//! The CSRF defence is a signed double-submit: a random nonce in an `HttpOnly`, `SameSite=Strict`
//! cookie, and in each form a MAC of it under a key of the server's. A form posted from another site
//! has neither the cookie (SameSite) nor a token it could compute (the MAC), and one posted without
//! the token is refused.

use axum::extract::FromRequest;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::HashKey;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// The cookie holding the CSRF nonce.
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

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, for the whole site; `Secure` when numlink is
/// reached over https; `max_age` seconds (0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"))
        .expect("cookie values are made of safe characters")
}

/// The CSRF state of a request: the nonce of its cookie, or a new one to set.
pub struct Csrf {
    nonce: String,
    /// The nonce is new: the response sets its cookie.
    fresh: bool,
}

impl Csrf {
    /// The request's nonce, or a new one.
    pub fn of(headers: &HeaderMap) -> Csrf {
        match cookie(headers, CSRF_COOKIE).filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
            Some(n) => Csrf { nonce: n.to_string(), fresh: false },
            None => Csrf { nonce: hex::encode(store::random_bytes::<16>()), fresh: true },
        }
    }

    /// The token a form carries.
    pub fn token(&self, key: &HashKey) -> String {
        token_of(key, &self.nonce)
    }

    /// Sets the cookie on `resp` if the nonce is new (a year: it proves nothing by itself).
    pub fn set_on(&self, resp: &mut Response, secure: bool) {
        if self.fresh {
            resp.headers_mut().append(header::SET_COOKIE, set_cookie(CSRF_COOKIE, &self.nonce, 31_536_000, secure));
        }
    }
}

fn token_of(key: &HashKey, nonce: &str) -> String {
    hex::encode(&key.mac(format!("csrf|{nonce}").as_bytes())[..16])
}

/// Whether a posted form's token matches the request's CSRF cookie.
pub fn csrf_ok(key: &HashKey, headers: &HeaderMap, form: &Form) -> bool {
    let Some(nonce) = cookie(headers, CSRF_COOKIE) else { return false };
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
}

impl FromRequest<AppState> for Form {
    type Rejection = Response;

    /// At most `form_bytes_max` bytes of `application/x-www-form-urlencoded`.
    async fn from_request(req: Request<axum::body::Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let max = state.limits.form_bytes_max;
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim() == "application/x-www-form-urlencoded"));
        if !is_form {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected a form (application/x-www-form-urlencoded)")
                .into_response());
        }
        let bytes = axum::body::to_bytes(req.into_body(), max)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, format!("a form is at most {max} bytes")).into_response())?;
        Ok(Form(form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_by_its_whole_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("nl_csrf_x=1; nl_csrf=abc; lang=en"));
        assert_eq!(cookie(&h, "nl_csrf"), Some("abc"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "nl"), None);
    }

    #[test]
    fn a_token_is_good_only_with_its_own_cookie() {
        let key = HashKey::generate();
        let csrf = Csrf::of(&HeaderMap::new());
        assert!(csrf.fresh);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("nl_csrf={}", csrf.nonce)).unwrap());
        let form = |t: &str| Form(vec![("csrf".into(), t.into())]);
        assert!(csrf_ok(&key, &h, &form(&csrf.token(&key))));
        assert!(!csrf_ok(&key, &h, &form("")));
        assert!(!csrf_ok(&key, &h, &form(&Csrf::of(&HeaderMap::new()).token(&key))));
        assert!(!csrf_ok(&key, &HeaderMap::new(), &form(&csrf.token(&key))), "no cookie");
        assert!(!csrf_ok(&key, &h, &Form(vec![])), "no token");
        assert!(!Csrf::of(&h).fresh, "the request's own nonce is kept");
    }
}
