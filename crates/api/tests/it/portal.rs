//! The holder's portal over HTTP, as a browser speaks to it: forms, redirects and cookies. The path a
//! person takes is tested in a real browser (`crates/numlink/tests/it/browser.rs`); here, what a
//! browser does not show: the cookies' attributes, the CSRF check, the deadlines on a moved clock, and
//! that the pages and the API are one set of rules (one's requests and limits are the other's).

use axum::body::Body;
use axum::http::Method;
use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::holder::{N, ask_code, last_code, login, world};
use crate::{Resp, TestApp};

backend_tests!(
    a_holder_unbinds_through_the_pages_and_the_api_sees_the_same_requests,
    the_pages_and_the_api_share_the_limits_on_codes,
    cookies_are_secure_when_numlink_is_reached_over_https,
);

/// A browser's cookie jar, as far as these tests need one.
#[derive(Default)]
pub(crate) struct Jar(pub(crate) Vec<(String, String)>);

impl Jar {
    /// Takes the `Set-Cookie`s of a response (a `Max-Age=0` one removes its cookie).
    fn take(&mut self, r: &Resp) {
        for v in r.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            if !attrs.contains("Max-Age=0") {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    pub(crate) fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The `Set-Cookie` of `name` in a response.
pub(crate) fn set_cookie<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", r.headers))
}

/// The value of a `Set-Cookie`.
fn csrf_cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// The CSRF token of the first form on a page.
pub(crate) fn csrf_of(page: &Resp) -> String {
    let at = page.text.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no form token: {}", page.text));
    let rest = &page.text[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => s.push(b as char),
                _ => s.push_str(&format!("%{b:02X}")),
            }
        }
    }
    s
}

/// A browser of one language: its cookies kept from answer to answer.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) jar: Jar,
}

impl Browser<'_> {
    pub(crate) async fn get(&mut self, path: &str) -> Resp {
        let cookie = self.jar.header();
        let headers = [("cookie", cookie.as_str()), ("accept-language", "en")];
        let r = self.app.request(Method::GET, path, None, &headers, Body::empty()).await;
        self.jar.take(&r);
        r
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let cookie = self.jar.header();
        let headers = [
            ("cookie", cookie.as_str()),
            ("accept-language", "en"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let r = self.app.request(Method::POST, path, None, &headers, Body::from(form_body(fields))).await;
        self.jar.take(&r);
        r
    }

    /// Posts a multipart form as a browser sends a file: its fields in order, then the file (if any)
    /// named `name` with `bytes`.
    pub(crate) async fn post_file(&mut self, path: &str, fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Resp {
        const BOUNDARY: &str = "----numlinktestboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let cookie = self.jar.header();
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let headers = [("cookie", cookie.as_str()), ("accept-language", "en"), ("content-type", content_type.as_str())];
        let r = self.app.request(Method::POST, path, None, &headers, Body::from(body)).await;
        self.jar.take(&r);
        r
    }
}

async fn a_holder_unbinds_through_the_pages_and_the_api_sees_the_same_requests(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let mut b = Browser { app: &app, jar: Jar::default() };

    let start = b.get("/").await;
    assert_eq!(start.status, 200);
    let csrf_cookie = set_cookie(&start, "nl_csrf");
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"), "{csrf_cookie}");
    assert!(!csrf_cookie.contains("Secure"), "plain http here: {csrf_cookie}");
    let csrf = csrf_of(&start);

    // The number, typed as people do.
    let sent = b.post("/code", &[("csrf", &csrf), ("phone", "+86 138 0013 8000")]).await;
    assert_eq!((sent.status, sent.headers["location"].to_str().unwrap()), (303, "/code"));
    let step = set_cookie(&sent, "nl_code");
    assert!(step.contains("HttpOnly") && step.contains("SameSite=Strict") && step.contains("Max-Age=600"), "{step}");
    let code = last_code(&app, &w, N).await;
    let page = b.get("/code").await;
    assert!(page.text.contains("+8613800138000"), "{}", page.text);

    // The code: a session in a cookie, never in the page.
    let signed = b.post("/session", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!((signed.status, signed.headers["location"].to_str().unwrap()), (303, "/institutions"));
    let session = set_cookie(&signed, "nl_session");
    assert!(session.starts_with("nl_session=nlh_"), "{session}");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    assert!(!session.contains("Max-Age"), "kept while the browser is open; the token itself lasts 15 minutes");
    // A new CSRF nonce with the session.
    let renewed = set_cookie(&signed, "nl_csrf");
    assert!(!renewed.contains(&csrf_cookie_value(csrf_cookie)), "{renewed}");
    let csrf = csrf_of(&b.get("/institutions").await);
    assert!(b.jar.get("nl_code").is_none(), "the code step is over");
    let token = b.jar.get("nl_session").unwrap().to_string();

    // R5: the previous holder's bank, with its two bindings; never the account references, never the
    // bank of her own tenure.
    let list = b.get("/institutions").await;
    assert_eq!(list.status, 200);
    assert!(list.text.contains("Old Bank") && list.text.contains("2 accounts"), "{}", list.text);
    assert!(!list.text.contains("New Bank") && !list.text.contains("old-acct"), "{}", list.text);
    assert!(!list.text.contains("nlh_"), "the session token is not in the page");

    // A form without its token changes nothing.
    let forged = b.post("/unbind", &[("all", "1")]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.text.contains("This form could not be accepted"), "{}", forged.text);
    let none = app.get("/v1/holder/unbind-requests", &token).await;
    assert_eq!(none.body["requests"], json!([]), "{}", none.text);

    // Confirm, then ask: the API, with the same session, sees the request the pages made.
    let confirm = b.post("/unbind/confirm", &[("csrf", &csrf), ("all", "1")]).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text.contains("Old Bank") && confirm.text.contains("7 July 2025"), "deadline: {}", confirm.text);
    // The confirmation asks exactly the institutions it names.
    let named = format!(r#"name="institution" value="{}""#, w.old_bank_id);
    assert!(confirm.text.contains(&named) && !confirm.text.contains(r#"name="all""#), "{}", confirm.text);
    let asked = b.post("/unbind", &[("csrf", &csrf), ("institution", &w.old_bank_id)]).await;
    assert_eq!((asked.status, asked.headers["location"].to_str().unwrap()), (303, "/requests?asked=1"));
    let api = app.get("/v1/holder/unbind-requests", &token).await;
    let requests = api.body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{}", api.text);
    assert_eq!(
        (requests[0]["institutionId"].as_str(), requests[0]["deadline"].as_str()),
        (Some(w.old_bank_id.as_str()), Some("2025-07-07"))
    );
    // Asking again by the API while it is open returns that request, as the page shows it.
    let again = app.post("/v1/holder/unbind-requests", &token, json!({"all": true})).await;
    assert_eq!(again.body["requests"][0]["id"], requests[0]["id"]);

    // A week on, past the deadline, the status page marks it overdue.
    let status = b.get("/requests?asked=1").await;
    assert!(status.text.contains("Your request was sent to 1 institution."), "{}", status.text);
    assert!(status.text.contains("Asked, waiting for an answer"), "{}", status.text);
    app.advance(16 * 60);
    let ended = b.get("/requests").await;
    assert_eq!(ended.status, 401, "the session lasted 15 minutes");
    assert!(ended.text.contains("Your session has ended"), "{}", ended.text);
    assert!(set_cookie(&ended, "nl_session").contains("Max-Age=0"), "the cookie is removed");
    app.advance(8 * 86_400);
    // She signs in again (here by the API: its token is the pages' session).
    let token = login(&app, &w, N).await;
    b.jar.0.push(("nl_session".into(), token));
    let late = b.get("/requests").await;
    assert!(
        late.text.contains("Overdue: no answer by the deadline") && late.text.contains("state-overdue"),
        "{}",
        late.text
    );
    // The bank refuses: the reason, in plain words.
    let id = requests[0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/unbind-requests/{id}/resolve"),
            &w.old_bank,
            json!({"outcome": "rejected", "reason": "fraud_investigation"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answered = b.get("/requests").await;
    assert!(
        answered.text.contains("Refused") && answered.text.contains("under a fraud investigation"),
        "{}",
        answered.text
    );
    // A refusal stands for 30 days: the bank is listed with it, and cannot be asked again meanwhile
    // (asking would only give the refusal back, so no page says a request was sent).
    let list = b.get("/institutions").await;
    assert!(list.text.contains("Refused") && !list.text.contains(r#"type="checkbox""#), "{}", list.text);
    let csrf = csrf_of(&list);
    let resent = b.post("/unbind", &[("csrf", &csrf), ("institution", &w.old_bank_id)]).await;
    assert_eq!((resent.status, resent.headers["location"].to_str().unwrap()), (303, "/requests"));
    let confirm = b.post("/unbind/confirm", &[("csrf", &csrf), ("all", "1")]).await;
    assert_eq!(confirm.status, 409, "nothing can be asked: {}", confirm.text);

    // The proof: its text, its download and its QR code all carry the same proof.
    let proof = b.get("/proof").await;
    assert_eq!(proof.status, 200);
    let at = proof.text.find("eyJ").expect("the proof's text");
    let jws: String =
        proof.text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    assert_eq!(jws.matches('.').count(), 2, "{jws}");
    assert!(proof.text.contains(&format!("data:text/plain;charset=utf-8,{jws}")), "the download");
    assert!(proof.text.contains("<svg") && proof.text.contains("1 February 2025"), "{}", proof.text);
    assert!(proof.text.contains(&format!("/verify?token={jws}")), "the QR code's link");

    // Sign out: the cookie is removed, and the pages ask for a code again.
    let csrf = csrf_of(&b.get("/requests").await);
    let out = b.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.headers["location"].to_str().unwrap()), (303, "/?signed-out=1"));
    assert!(set_cookie(&out, "nl_session").contains("Max-Age=0"));
    // Without a session (after signing out, or arriving by a link from another site, which a
    // SameSite=Strict cookie does not follow), the pages lead to the first one, and end nothing.
    let again = b.get("/institutions").await;
    assert_eq!((again.status, again.headers["location"].to_str().unwrap()), (303, "/"));
    assert!(again.headers.get("set-cookie").is_none());
}

async fn the_pages_and_the_api_share_the_limits_on_codes(db: TestDb) {
    let app = TestApp::new(db);
    world(&app).await;
    let mut b = Browser { app: &app, jar: Jar::default() };
    let csrf = csrf_of(&b.get("/").await);
    // Five codes an hour for one number from one client: four by the API, the fifth by a page.
    for _ in 0..4 {
        ask_code(&app, N).await;
    }
    assert_eq!(b.post("/code", &[("csrf", &csrf), ("phone", N)]).await.status, 303);
    // Again within the minute: the code page asks her to wait (and sends nothing).
    let soon = b.post("/code", &[("csrf", &csrf), ("phone", N)]).await;
    assert_eq!(soon.status, 429);
    assert!(soon.text.contains("You can ask for another in 60 seconds"), "{}", soon.text);
    // From another browser (no code step under way): the number's limit.
    b.jar.0.retain(|(n, _)| n != "nl_code");
    let refused = b.post("/code", &[("csrf", &csrf), ("phone", N)]).await;
    assert_eq!(refused.status, 429);
    assert!(refused.text.contains("Too many codes for this number"), "{}", refused.text);
    assert!(refused.text.contains("at most 5 codes an hour and 10 a day"), "{}", refused.text);
    // And the API is refused too, having counted the page's code.
    let api = app
        .request(
            Method::POST,
            "/v1/holder/otp",
            None,
            &[("content-type", "application/json")],
            Body::from(json!({"phoneNumber": N}).to_string()),
        )
        .await;
    assert_eq!(api.status, 429);
    // A number in no carrier's range: the page says numlink does not cover it.
    let uncovered = b.post("/code", &[("csrf", &csrf), ("phone", "+44 20 7946 0000")]).await;
    assert_eq!(uncovered.status, 422);
    assert!(uncovered.text.contains("numlink does not cover this number"), "{}", uncovered.text);
    // A number it cannot read: said on the form, with what was typed.
    let typo = b.post("/code", &[("csrf", &csrf), ("phone", "138 0013")]).await;
    assert_eq!(typo.status, 400);
    assert!(typo.text.contains("aria-invalid=\"true\"") && typo.text.contains("value=\"138 0013\""), "{}", typo.text);
}

async fn cookies_are_secure_when_numlink_is_reached_over_https(db: TestDb) {
    let holder = api::HolderConfig { public_url: Some("https://numlink.example.cn".into()), ..Default::default() };
    let app = TestApp::configured(db, api::Limits::default(), holder);
    let w = world(&app).await;
    let mut b = Browser { app: &app, jar: Jar::default() };
    // Secure, and named __Host- so that no other host of the domain can set them.
    let start = b.get("/").await;
    assert!(set_cookie(&start, "__Host-nl_csrf").contains("; Secure"));
    let csrf = csrf_of(&start);
    let sent = b.post("/code", &[("csrf", &csrf), ("phone", N)]).await;
    assert!(set_cookie(&sent, "__Host-nl_code").contains("; Secure"));
    let code = last_code(&app, &w, N).await;
    let signed = b.post("/session", &[("csrf", &csrf), ("code", &code)]).await;
    assert!(set_cookie(&signed, "__Host-nl_session").contains("; Secure"));
    // A session cookie without the prefix (planted by another host) is not read.
    let plain = b.jar.get("__Host-nl_session").unwrap().to_string();
    let mut other = Browser { app: &app, jar: Jar(vec![("nl_session".into(), plain)]) };
    assert_eq!(other.get("/institutions").await.headers["location"], "/");
    // The QR code's link is at the public address.
    let proof = b.get("/proof").await;
    assert!(proof.text.contains("href=\"https://numlink.example.cn/verify?token=eyJ"), "{}", proof.text);
}
