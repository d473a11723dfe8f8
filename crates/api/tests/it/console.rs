//! The consoles over HTTP, as a browser speaks to them: an institution signs in with its key and
//! answers a request; sessions end when idle, signed out or revoked; and a page authorises exactly as
//! its API route, refusing another's object as if it did not exist.

use serde_json::json;
use store::backend_tests;
use store::testing::TestDb;

use crate::TestApp;
use crate::holder::{N, login, world};
use crate::portal::{Browser, Jar, csrf_of, set_cookie};

backend_tests!(
    an_institution_signs_in_and_answers_a_request,
    a_console_page_authorises_as_its_route,
    a_console_session_ends_when_idle_signed_out_or_revoked,
    the_regulator_reads_the_report_for_a_period_sorted_and_as_csv,
    an_institution_filters_and_acknowledges_its_notifications,
    an_institution_manages_its_webhook_endpoints,
    a_client_sending_wrong_keys_is_stopped_for_the_hour,
    a_carrier_sees_its_ranges_and_the_events_it_reported,
    an_institution_tests_an_endpoint_and_reads_its_log,
    an_institution_uploads_files_and_finds_its_bindings,
    a_carrier_uploads_a_lifecycle_file_and_downloads_its_rejections,
    a_carrier_tries_its_sms_gateway_and_counts_its_codes,
);

/// A browser signed in to the console with `key`.
pub(crate) async fn signed_in<'a>(app: &'a TestApp, key: &str) -> Browser<'a> {
    let mut b = Browser { app, jar: Jar::default() };
    let csrf = csrf_of(&b.get("/console").await);
    let r = b.post("/console/sign-in", &[("csrf", &csrf), ("key", key)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    b
}

/// The id of the first request on the institution's queue.
fn first_request(page: &str) -> String {
    let at = page.find("/console/requests/unb_").expect("a request on the queue") + "/console/requests/".len();
    page[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

async fn an_institution_signs_in_and_answers_a_request(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let holder = login(&app, &w, N).await;
    assert_eq!(app.post("/v1/holder/unbind-requests", &holder, json!({"all": true})).await.status, 201);

    // A wrong key: said on the form; nothing set.
    let mut b = Browser { app: &app, jar: Jar::default() };
    let csrf = csrf_of(&b.get("/console").await);
    let wrong = b.post("/console/sign-in", &[("csrf", &csrf), ("key", "nlk_not_a_key")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("This key is not one numlink knows"), "{}", wrong.text);
    assert!(b.jar.get("nl_console").is_none());

    // The key, exchanged for a session: a cookie holding no key.
    let r = b.post("/console/sign-in", &[("csrf", &csrf), ("key", &w.old_bank)]).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (303, "/console/requests"));
    let cookie = set_cookie(&r, "nl_console");
    assert!(cookie.starts_with("nl_console=nlc_") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains(&w.old_bank));

    // The queue: the open request, its deadline and time left.
    let queue = b.get("/console/requests").await;
    assert_eq!(queue.status, 200);
    assert!(queue.text.contains("7 July 2025") && queue.text.contains("7 days left"), "{}", queue.text);
    let id = first_request(&queue.text);

    // The request: the accounts, and the holder's proof checked.
    let page = b.get(&format!("/console/requests/{id}")).await;
    assert!(page.text.contains("old-acct-1") && page.text.contains("old-acct-2"), "{}", page.text);
    assert!(page.text.contains("✓ Valid") && page.text.contains(N), "{}", page.text);
    // A refusal without a reason is said on the page; nothing is answered.
    let csrf = csrf_of(&page);
    let bare = b.post(&format!("/console/requests/{id}/resolve"), &[("csrf", &csrf), ("outcome", "rejected")]).await;
    assert_eq!(bare.status, 400);
    assert!(bare.text.contains("A refusal needs one of the reasons."), "{}", bare.text);
    assert!(bare.text.contains(r#"value="rejected" checked"#), "the choice is kept: {}", bare.text);
    // Unbound: the API sees the answer the page gave.
    let done = b.post(&format!("/console/requests/{id}/resolve"), &[("csrf", &csrf), ("outcome", "unbound")]).await;
    assert_eq!(done.status, 303);
    let answered = b.get(done.headers["location"].to_str().unwrap()).await;
    assert!(answered.text.contains("Your answer was recorded"), "{}", answered.text);
    let api = app.get(&format!("/v1/unbind-requests/{id}"), &w.old_bank).await;
    assert_eq!(api.body["state"], "unbound", "{}", api.text);
    // A second answer: refused, the first stands.
    let again = b.post(&format!("/console/requests/{id}/resolve"), &[("csrf", &csrf), ("outcome", "unbound")]).await;
    assert_eq!(again.status, 409);
    assert!(again.text.contains("Already answered"), "{}", again.text);
}

async fn a_console_page_authorises_as_its_route(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let holder = login(&app, &w, N).await;
    app.post("/v1/holder/unbind-requests", &holder, json!({"all": true})).await;
    let mut old = signed_in(&app, &w.old_bank).await;
    let id = first_request(&old.get("/console/requests").await.text);

    // Another institution asks for it: the same page as for an id nobody has.
    let mut other = signed_in(&app, &w.new_bank).await;
    let theirs = other.get(&format!("/console/requests/{id}")).await;
    let nobodys = other.get("/console/requests/unb_00000000000000000000").await;
    assert_eq!((theirs.status, nobodys.status), (404, 404));
    let body = |t: &str| t[t.find("<main").unwrap()..].to_string();
    assert_eq!(body(&theirs.text), body(&nobodys.text), "nothing tells the two apart");
    assert!(theirs.text.contains(r#"action="/console/sign-out""#), "the refusal keeps the console's frame");
    let csrf = csrf_of(&other.get("/console/requests").await);
    let answer =
        other.post(&format!("/console/requests/{id}/resolve"), &[("csrf", &csrf), ("outcome", "unbound")]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(app.get(&format!("/v1/unbind-requests/{id}"), &w.old_bank).await.body["state"], "open");
    // A carrier's session: not its page, whatever the id.
    let mut carrier = signed_in(&app, &w.carrier).await;
    assert_eq!(carrier.get("/console/requests").await.status, 403);
    assert_eq!(carrier.get(&format!("/console/requests/{id}")).await.status, 403);
    assert_eq!(carrier.get("/console").await.headers["location"], "/console/home");
    // A holder's session is no console session.
    let mut phone =
        Browser { app: &app, jar: Jar(vec![("nl_session".into(), holder.clone()), ("nl_console".into(), holder)]) };
    assert_eq!(phone.get("/console/requests").await.headers["location"], "/console?ended=1");
    // A form without its token changes nothing.
    let forged = old.post(&format!("/console/requests/{id}/resolve"), &[("outcome", "unbound")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.get(&format!("/v1/unbind-requests/{id}"), &w.old_bank).await.body["state"], "open");
}

async fn a_console_session_ends_when_idle_signed_out_or_revoked(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // Without a session: the sign-in page.
    let mut nobody = Browser { app: &app, jar: Jar::default() };
    assert_eq!(nobody.get("/console/requests").await.headers["location"], "/console");
    // Idle 31 minutes: sent to sign in, told why, the cookie removed.
    let mut b = signed_in(&app, &w.old_bank).await;
    app.advance(29 * 60);
    assert_eq!(b.get("/console/requests").await.status, 200);
    app.advance(29 * 60);
    assert_eq!(b.get("/console/requests").await.status, 200, "each use keeps it open");
    app.advance(31 * 60);
    let idle = b.get("/console/requests").await;
    assert_eq!(idle.headers["location"], "/console?ended=1");
    assert!(set_cookie(&idle, "nl_console").contains("Max-Age=0"));
    let told = b.get("/console?ended=1").await;
    assert!(told.text.contains("Your session ended after 30 minutes without use"), "{}", told.text);
    // Signed out.
    let mut b = signed_in(&app, &w.old_bank).await;
    let csrf = csrf_of(&b.get("/console/requests").await);
    let token = b.jar.get("nl_console").unwrap().to_string();
    let out = b.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.headers["location"], "/console");
    let mut replay = Browser { app: &app, jar: Jar(vec![("nl_console".into(), token)]) };
    assert_eq!(replay.get("/console/requests").await.headers["location"], "/console?ended=1", "the token is dead");
    // The key revoked: its sessions end at their next request.
    let mut b = signed_in(&app, &w.old_bank).await;
    let old_bank = app.store.list_participants().await.unwrap().into_iter().find(|p| p.name == "Old Bank").unwrap();
    app.store.revoke_keys(&old_bank.id).await.unwrap();
    assert_eq!(b.get("/console/requests").await.headers["location"], "/console?ended=1");
}

async fn the_regulator_reads_the_report_for_a_period_sorted_and_as_csv(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let holder = login(&app, &w, N).await;
    app.post("/v1/holder/unbind-requests", &holder, json!({"all": true})).await;
    // A week and more on: Old Bank's request is overdue.
    app.advance(9 * 86_400);
    let mut b = signed_in(&app, &w.regulator).await;
    let home = b.get("/console").await;
    assert_eq!(home.headers["location"], "/console/report");
    let page = b.get("/console/report").await;
    assert_eq!(page.status, 200);
    // Worst first: the overdue column sorted descending, Old Bank on top with its overdue request.
    assert!(page.text.contains(r#"aria-sort="descending""#), "{}", page.text);
    let old = page.text.find("Old Bank").unwrap();
    let new = page.text.find("New Bank").unwrap();
    assert!(old < new, "the late institution first");
    assert!(page.text.contains(r#"<tr class="late">"#), "{}", page.text);
    // By name, ascending: New Bank first.
    let by_name = b.get("/console/report?sort=name&dir=asc").await;
    assert!(by_name.text.find("New Bank").unwrap() < by_name.text.find("Old Bank").unwrap());
    assert!(by_name.text.contains(r#"aria-sort="ascending""#));
    // The charts: the request overdue at the last week's end is drawn, with its table; nothing is
    // answered yet, and that is said rather than drawn.
    let overdue_chart = &page.text[page.text.find(r#"id="chart-overdue-title""#).unwrap()..];
    let overdue_chart = &overdue_chart[..overdue_chart.find("</figure>").unwrap()];
    assert!(overdue_chart.contains("<svg") && overdue_chart.contains(r#"class="visually-hidden""#), "{overdue_chart}");
    assert!(overdue_chart.contains("<td>1</td>"), "one overdue at the end of the last week: {overdue_chart}");
    assert!(page.text.contains("No request made in this period has been answered."));
    // A period without the request: nothing open anywhere, and no chart drawn from nothing.
    let before = b.get("/console/report?from=2025-01-01&to=2025-06-01").await;
    assert!(!before.text.contains(r#"<tr class="late">"#), "{}", before.text);
    assert!(!before.text.contains("<svg"), "an empty period draws no chart");
    assert!(before.text.contains("No request was overdue at the end of any week of this period."));
    // A period of the wrong shape: said, and everything shown.
    let wrong = b.get("/console/report?from=2025-07-01&to=2025-01-01").await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.text.contains("the first not after the second"), "{}", wrong.text);
    // The CSV: one line per institution, figures as numbers.
    let csv = b.get("/console/report.csv?from=2025-06-01&to=2025-07-31").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"numlink-report-"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("institution_id,name,open,overdue,resolved,resolved_late,rejected,"), "{}", lines[0]);
    let old_line = lines.iter().find(|l| l.contains("Old Bank")).unwrap();
    assert!(old_line.contains(",1,1,0,0,0,"), "open 1, overdue 1: {old_line}");
    // The same period through the API: the same figures.
    let api = app.get("/v1/reports/institutions?from=2025-06-01&to=2025-07-31", &w.regulator).await;
    let line = api.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!((line["open"].as_u64(), line["overdue"].as_u64()), (Some(1), Some(1)), "{}", api.text);
    let none = app.get("/v1/reports/institutions?from=2025-01-01&to=2025-06-01", &w.regulator).await;
    let line = none.body["institutions"].as_array().unwrap().iter().find(|l| l["name"] == "Old Bank").unwrap().clone();
    assert_eq!(line["open"].as_u64(), Some(0), "{}", none.text);
    crate::assert_error(
        &app.get("/v1/reports/institutions?from=2025-01-01", &w.regulator).await,
        400,
        "INVALID_ARGUMENT",
    );
    // An institution's session: not its page.
    let mut bank = signed_in(&app, &w.old_bank).await;
    assert_eq!(bank.get("/console/report").await.status, 403);
    assert_eq!(bank.get("/console/report.csv").await.status, 403);
}

/// The ids of the notifications a page offers to acknowledge.
fn ticks(page: &str) -> Vec<String> {
    page.split(r#"name="id" value=""#).skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_string()).collect()
}

async fn an_institution_filters_and_acknowledges_its_notifications(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let holder = login(&app, &w, N).await;
    app.post("/v1/holder/unbind-requests", &holder, json!({"all": true})).await;
    let mut b = signed_in(&app, &w.old_bank).await;
    // Its two accounts were bound before N was disconnected and reissued (two notices each), and the
    // holder's request.
    let all = b.get("/console/notifications").await;
    assert_eq!(all.status, 200);
    assert!(
        all.text.contains("Number reissued to someone new") && all.text.contains("The new holder asks you to unbind")
    );
    assert_eq!(ticks(&all.text).len(), 5, "{}", all.text);
    let reissued = b.get("/console/notifications?type=number.reassigned&acked=no").await;
    let ids = ticks(&reissued.text);
    assert_eq!(ids.len(), 2, "{}", reissued.text);
    assert!(!reissued.text.contains(r#"class="inst">The new holder asks you to unbind"#), "only the kind chosen");
    // Another institution cannot acknowledge them: the same 404 as for an id nobody has.
    let mut other = signed_in(&app, &w.new_bank).await;
    let csrf = csrf_of(&other.get("/console/notifications").await);
    let theirs =
        other.post("/console/notifications/ack", &[("csrf", &csrf), ("id", &ids[0]), ("action", "unbound")]).await;
    assert_eq!(theirs.status, 404);
    // Both at once, with one action; back to the same filter, saying how many.
    let csrf = csrf_of(&reissued);
    let back = "type=number.reassigned&acked=no";
    let fields = [("csrf", csrf.as_str()), ("back", back), ("id", &ids[0]), ("id", &ids[1]), ("action", "unbound")];
    let acked = b.post("/console/notifications/ack", &fields).await;
    assert_eq!(
        (acked.status, acked.headers["location"].to_str().unwrap()),
        (303, "/console/notifications?type=number.reassigned&acked=no&done=2")
    );
    let after = b.get(acked.headers["location"].to_str().unwrap()).await;
    assert!(after.text.contains("2 notifications acknowledged."), "{}", after.text);
    assert!(ticks(&after.text).is_empty(), "none left unacknowledged of that kind");
    let done = b.get("/console/notifications?acked=yes").await;
    assert!(done.text.contains("Acknowledged: Removed the number from the account"), "{}", done.text);
    // The API's feed says the same.
    let feed = app.get("/v1/notifications", &w.old_bank).await;
    let acked_by_api = feed.body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| ids.contains(&n["id"].as_str().unwrap().to_string()))
        .count();
    assert_eq!(acked_by_api, 2);
    // An unknown action is refused, and nothing is acknowledged.
    let rest = ticks(&b.get("/console/notifications").await.text);
    let wrong = b.post("/console/notifications/ack", &[("csrf", &csrf), ("id", &rest[0]), ("action", "burned")]).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(ticks(&b.get("/console/notifications").await.text), rest);
}

async fn an_institution_manages_its_webhook_endpoints(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let mut b = signed_in(&app, &w.old_bank).await;
    let page = b.get("/console/endpoints").await;
    assert!(page.text.contains("You have no webhook endpoint"), "{}", page.text);
    let csrf = csrf_of(&page);
    // An address numlink will not call: said on the form, the address kept.
    let bad = b.post("/console/endpoints", &[("csrf", &csrf), ("url", "ftp://bank.example/x")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("numlink cannot send to this address") && bad.text.contains("ftp://bank.example/x"));
    // Added: the secret shown this once, and the API lists the endpoint.
    let added = b.post("/console/endpoints", &[("csrf", &csrf), ("url", "http://127.0.0.1:9/hook")]).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let secret_of =
        |t: &str| t[t.find("whsec_").expect("the secret")..].chars().take_while(|c| *c != '<').collect::<String>();
    let secret = secret_of(&added.text);
    let api = app.get("/v1/webhook-endpoints", &w.old_bank).await;
    let id = api.body["endpoints"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(api.body["endpoints"][0]["url"], "http://127.0.0.1:9/hook");
    let again = b.get("/console/endpoints").await;
    assert!(!again.text.contains(&secret), "never shown again");
    // Another institution cannot rotate or delete it: the same 404 as for an id nobody has.
    let mut other = signed_in(&app, &w.new_bank).await;
    let their_csrf = csrf_of(&other.get("/console/endpoints").await);
    assert_eq!(other.post(&format!("/console/endpoints/{id}/rotate"), &[("csrf", &their_csrf)]).await.status, 404);
    assert_eq!(other.get(&format!("/console/endpoints/{id}/delete")).await.status, 404);
    assert_eq!(other.post(&format!("/console/endpoints/{id}/delete"), &[("csrf", &their_csrf)]).await.status, 404);
    // A new secret: shown once, the previous one still signing for a while.
    let rotated = b.post(&format!("/console/endpoints/{id}/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status, 200);
    assert_ne!(secret_of(&rotated.text), secret);
    assert!(rotated.text.contains("The previous secret signs too until"), "{}", rotated.text);
    // Deleted after a confirmation.
    let confirm = b.get(&format!("/console/endpoints/{id}/delete")).await;
    assert!(confirm.text.contains("Delete this endpoint?") && confirm.text.contains("http://127.0.0.1:9/hook"));
    let deleted = b.post(&format!("/console/endpoints/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(deleted.headers["location"], "/console/endpoints?deleted=1");
    assert_eq!(app.get("/v1/webhook-endpoints", &w.old_bank).await.body["endpoints"], json!([]));
}

async fn a_client_sending_wrong_keys_is_stopped_for_the_hour(db: TestDb) {
    let limits = api::Limits { console_sign_in_failures_per_client_per_hour_max: 3, ..api::Limits::default() };
    let app = TestApp::with_limits(db, limits);
    let w = world(&app).await;
    let mut b = Browser { app: &app, jar: Jar::default() };
    let csrf = csrf_of(&b.get("/console").await);
    let cookie = b.jar.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    // A sign-in from a client address, as the server sees it.
    let from = |addr: &str, key: &str| {
        let body = format!("csrf={csrf}&key={key}");
        let mut req = axum::http::Request::post("/console/sign-in")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.clone())
            .header("accept-language", "en")
            .body(axum::body::Body::from(body))
            .unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(addr.parse::<std::net::SocketAddr>().unwrap()));
        app.send(req)
    };
    for _ in 0..3 {
        assert_eq!(from("192.0.2.7:4000", "nlk_wrong").await.status, 401);
    }
    // The fourth attempt, even with the right key: refused for the hour, and said so.
    let stopped = from("192.0.2.7:4001", &w.old_bank).await;
    assert_eq!(stopped.status, 429);
    assert!(stopped.text.contains("Too many wrong keys were sent from this connection"), "{}", stopped.text);
    // Another address signs in.
    assert_eq!(from("198.51.100.1:4000", &w.old_bank).await.status, 303);
    // An hour on, the first again.
    app.advance(3601);
    assert_eq!(from("192.0.2.7:4002", &w.old_bank).await.status, 303);
}

async fn a_carrier_sees_its_ranges_and_the_events_it_reported(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    // Another carrier's event on the same number (a whole port by the portability database is not
    // needed: a second carrier's own range will do) stays out of the first one's view.
    let (_, other) = app.participant(store::Role::Carrier, "Carrier B", &["+86139"]).await;
    app.accept(
        &other,
        json!([{"eventId": "b-1", "phoneNumber": "+8613900000001", "type": "activated", "date": "2025-01-01"}]),
    )
    .await;
    // The API: the carrier's own events for N, in order; none of another's.
    let api = app.get("/v1/lifecycle-events?phoneNumber=%2B8613800138000", &w.carrier).await;
    assert_eq!(api.status, 200, "{}", api.text);
    let kinds: Vec<&str> = api.body["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.len() >= 2 && kinds.contains(&"disconnected"), "{}", api.text);
    let theirs = app.get("/v1/lifecycle-events?phoneNumber=%2B8613900000001", &w.carrier).await;
    assert_eq!(theirs.body["events"], json!([]), "another carrier's report is not shown");
    crate::assert_error(
        &app.get("/v1/lifecycle-events?phoneNumber=%2B8613800138000", &w.old_bank).await,
        403,
        "PERMISSION_DENIED",
    );
    // The console: the ranges, and the same events in words.
    let mut b = signed_in(&app, &w.carrier).await;
    let home = b.get("/console/home").await;
    assert!(home.text.contains("+86138") && home.text.contains("Reporting since"), "{}", home.text);
    let found = b.get("/console/home?number=%2B86+138+0013+8000").await;
    assert!(found.text.contains("Disconnected") && found.text.contains("Activated"), "{}", found.text);
    let none = b.get("/console/home?number=%2B8613900000001").await;
    assert!(none.text.contains("You have reported no event for this number."), "{}", none.text);
    let typo = b.get("/console/home?number=138").await;
    assert_eq!(typo.status, 400);
    // An institution's session: not its page.
    let mut bank = signed_in(&app, &w.old_bank).await;
    assert_eq!(bank.get("/console/home").await.status, 403);
}

/// The endpoint's page: a test event goes to a real receiver, its delivery is in the log with the
/// answer's status, and is sent again on asking; another institution's session reaches none of it.
async fn an_institution_tests_an_endpoint_and_reads_its_log(db: TestDb) {
    use crate::receiver::{Reply, receiver};
    let app = TestApp::new(db);
    let w = world(&app).await;
    let (rx, url) = receiver().await;
    let mut b = signed_in(&app, &w.old_bank).await;
    let csrf = csrf_of(&b.get("/console/endpoints").await);
    assert_eq!(b.post("/console/endpoints", &[("csrf", &csrf), ("url", &url)]).await.status, 201);
    let id =
        app.get("/v1/webhook-endpoints", &w.old_bank).await.body["endpoints"][0]["id"].as_str().unwrap().to_string();
    let page = format!("/console/endpoints/{id}");
    let first = b.get(&page).await;
    assert_eq!(first.status, 200);
    assert!(first.text.contains("Nothing has been sent to this endpoint yet"), "{}", first.text);

    rx.then(&[Reply::Status(500)]);
    let tested = b.post(&format!("{page}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(tested.headers["location"], format!("{page}?done=tested").as_str());
    app.deliverer.run_once().await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let webhook_id = got[0].headers["webhook-id"].to_str().unwrap().to_string();
    let log = b.get(&format!("{page}?done=tested")).await.text;
    assert!(log.contains("A test event is on its way"), "{log}");
    assert!(log.contains("A test of your webhook endpoint") && log.contains("Waiting") && log.contains("500"), "{log}");
    assert!(log.contains(&webhook_id) && log.contains("Next attempt"), "{log}");
    assert!(!log.contains("/replay"), "a delivery still pending is not offered again");

    // Another institution: the page and every action is the 404 of an id nobody has.
    let mut other = signed_in(&app, &w.new_bank).await;
    let their_csrf = csrf_of(&other.get("/console/endpoints").await);
    assert_eq!(other.get(&page).await.status, 404);
    for action in ["test", "enable", &format!("deliveries/{webhook_id}/replay")] {
        assert_eq!(other.post(&format!("{page}/{action}"), &[("csrf", &their_csrf)]).await.status, 404, "{action}");
    }
    assert_eq!(other.get("/console/endpoints/whe_00000000000000000000").await.status, 404);
    assert_eq!(rx.received().len(), 1, "nothing sent for them");

    // Delivered on the next attempt; then sent again on asking, with the same id.
    app.advance(10);
    app.deliverer.run_once().await.unwrap();
    let log = b.get(&page).await.text;
    assert!(log.contains("Delivered") && log.contains("/replay"), "{log}");
    let replayed = b.post(&format!("{page}/deliveries/{webhook_id}/replay"), &[("csrf", &csrf)]).await;
    assert_eq!(replayed.headers["location"], format!("{page}?done=replayed").as_str());
    app.deliverer.run_once().await.unwrap();
    let got = rx.received();
    assert_eq!((got.len(), got[2].headers["webhook-id"].to_str().unwrap()), (3, webhook_id.as_str()));
    // Without the form's token, nothing is sent.
    assert_eq!(b.post(&format!("{page}/test"), &[]).await.status, 403);
    app.deliverer.run_once().await.unwrap();
    assert_eq!(rx.received().len(), 3);
}

/// The job a console upload was sent on to.
fn job_of(resp: &crate::Resp) -> String {
    assert_eq!(resp.status, 303, "{}", resp.text);
    let to = resp.headers["location"].to_str().unwrap();
    to.strip_prefix("/console/jobs/").expect("on to the job's page").to_string()
}

/// An institution uploads a binding file with a bad row and a check file from its console, follows
/// each job, downloads the rejected rows and the answers, then finds a binding by account and by
/// number and deletes it. Another institution's session reaches none of it, a carrier's is refused
/// the institution's pages, and a form without its token uploads nothing.
async fn an_institution_uploads_files_and_finds_its_bindings(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let mut b = signed_in(&app, &w.old_bank).await;
    let page = b.get("/console/files").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Binding file") && page.text.contains("Check file"), "{}", page.text);
    assert!(!page.text.contains("Lifecycle file"), "an institution's kinds only");
    let csrf = csrf_of(&page);

    // Without its token: refused, nothing queued.
    let bindings = b"account_ref,phone_number,bound_on\nacct-9,+8613800138009,2023-01-01\nacct-8,not-a-number,2023-01-01\nacct-7,+8613800138009,2023-02-01\n";
    let forged = b.post_file("/console/files/bindings", &[("csrf", "forged")], Some(("b.csv", bindings))).await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.get("/v1/jobs", &w.old_bank).await.body["jobs"], json!([]));
    // Without a session, nothing of the body is read: on to sign in.
    let mut stranger = Browser { app: &app, jar: Jar::default() };
    let r = stranger.post_file("/console/files/bindings", &[("csrf", "x")], Some(("b.csv", bindings))).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (303, "/console"));
    // Signed in, a body that never comes to its file: refused once it passes body_bytes_max (2 MiB),
    // not held in memory whole.
    let junk = vec![b'x'; 3 * 1024 * 1024];
    let cookie = b.jar.header();
    let headers = [("cookie", cookie.as_str()), ("content-type", "multipart/form-data; boundary=never")];
    let r = app.request(axum::http::Method::POST, "/console/files/bindings", None, &headers, junk.into()).await;
    assert_eq!(r.status, 403, "the token never arrived");
    assert_eq!(app.get("/v1/jobs", &w.old_bank).await.body["jobs"], json!([]));
    // No file chosen: said on the form.
    let none = b.post_file("/console/files/bindings", &[("csrf", &csrf)], None).await;
    assert_eq!(none.status, 400);
    assert!(none.text.contains("Choose a file first"), "{}", none.text);
    // A file of no known header: refused with the API's reason.
    let wrong = b.post_file("/console/files/bindings", &[("csrf", &csrf)], Some(("x.csv", b"a,b\n1,2\n"))).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.text.contains("numlink did not take this file"), "{}", wrong.text);

    let job = job_of(&b.post_file("/console/files/bindings", &[("csrf", &csrf)], Some(("b.csv", bindings))).await);
    let queued = b.get(&format!("/console/jobs/{job}")).await;
    assert_eq!(queued.status, 200);
    assert!(queued.text.contains("Waiting to start") && queued.text.contains("data-job="), "{}", queued.text);
    let progress = b.get(&format!("/console/jobs/{job}/progress")).await;
    assert_eq!((progress.body["state"].as_str(), progress.body["ended"].as_bool()), (Some("queued"), Some(false)));
    app.runner.run_until_idle().await.unwrap();
    let done = b.get(&format!("/console/jobs/{job}")).await.text;
    assert!(done.contains("Done") && done.contains("/rejections.csv") && !done.contains("/result.csv"), "{done}");
    let progress = b.get(&format!("/console/jobs/{job}/progress")).await.body;
    assert_eq!(
        (
            progress["ended"].as_bool(),
            progress["rowsRead"].as_u64(),
            progress["accepted"].as_u64(),
            progress["rejected"].as_u64()
        ),
        (Some(true), Some(3), Some(2), Some(1))
    );
    let rejected = b.get(&format!("/console/jobs/{job}/rejections.csv")).await;
    assert_eq!(rejected.status, 200);
    assert!(rejected.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert!(rejected.text.starts_with("line,code,message\n3,INVALID_ARGUMENT,"), "{}", rejected.text);
    // The same job as the API's.
    let api = app.get(&format!("/v1/jobs/{job}"), &w.old_bank).await.body;
    assert_eq!((api["accepted"].as_u64(), api["rejected"].as_u64()), (Some(2), Some(1)));

    let checks = b"phone_number,date\n+8613800138009,2022-01-01\nbad,2022-01-01\n";
    let check_job = job_of(&b.post_file("/console/files/checks", &[("csrf", &csrf)], Some(("c.csv", checks))).await);
    app.runner.run_until_idle().await.unwrap();
    let done = b.get(&format!("/console/jobs/{check_job}")).await.text;
    assert!(done.contains("/result.csv") && done.contains("Answered"), "{done}");
    let answers = b.get(&format!("/console/jobs/{check_job}/result.csv")).await;
    assert_eq!(answers.status, 200);
    assert!(answers.headers["content-disposition"].to_str().unwrap().contains("answers.csv"));
    let lines: Vec<&str> = answers.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", answers.text);
    assert!(lines[1].starts_with("+8613800138009,2022-01-01,") && lines[2].starts_with("bad,2022-01-01,"), "{lines:?}");
    let listed = b.get("/console/files").await.text;
    assert!(listed.contains(&job) && listed.contains(&check_job), "{listed}");

    // Found by account, and by the number as people type it; then deleted after a confirmation.
    let by_account = b.get("/console/bindings?by=account&q=acct-9").await.text;
    assert!(by_account.contains("acct-9") && !by_account.contains("acct-7"), "{by_account}");
    let by_number = b.get("/console/bindings?by=number&q=%2B86+138+0013+8009").await.text;
    assert!(by_number.contains("acct-9") && by_number.contains("acct-7"), "{by_number}");
    let bad = b.get("/console/bindings?by=number&q=hello").await;
    assert_eq!(bad.status, 400);
    let id_at = by_account.find("/console/bindings/bnd_").unwrap() + "/console/bindings/".len();
    let id: String = by_account[id_at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    assert_eq!(app.get(&format!("/v1/bindings/{id}"), &w.old_bank).await.status, 200);

    // Another institution: every page and action is the 404 of an id nobody has.
    let mut other = signed_in(&app, &w.new_bank).await;
    let their_csrf = csrf_of(&other.get("/console/files").await);
    for path in [
        format!("/console/jobs/{job}"),
        format!("/console/jobs/{job}/progress"),
        format!("/console/jobs/{job}/rejections.csv"),
        format!("/console/jobs/{check_job}/result.csv"),
        format!("/console/bindings/{id}/delete"),
        "/console/jobs/job_00000000000000000000".into(),
    ] {
        assert_eq!(other.get(&path).await.status, 404, "{path}");
    }
    assert_eq!(other.post(&format!("/console/bindings/{id}/delete"), &[("csrf", &their_csrf)]).await.status, 404);
    assert!(!other.get("/console/bindings?by=account&q=acct-9").await.text.contains("bnd_"), "not theirs to find");
    // A carrier's session: not an institution's pages.
    let mut carrier = signed_in(&app, &w.carrier).await;
    let carrier_csrf = csrf_of(&carrier.get("/console/files").await);
    assert_eq!(carrier.get("/console/bindings").await.status, 403);
    assert_eq!(carrier.get(&format!("/console/jobs/{job}")).await.status, 404);
    // Not its kind of file, as the API answers it; a kind that does not exist is not found.
    let refused =
        carrier.post_file("/console/files/bindings", &[("csrf", &carrier_csrf)], Some(("b.csv", bindings))).await;
    assert_eq!(refused.status, 403);
    let unknown =
        carrier.post_file("/console/files/contacts", &[("csrf", &carrier_csrf)], Some(("b.csv", bindings))).await;
    assert_eq!(unknown.status, 404);

    let confirm = b.get(&format!("/console/bindings/{id}/delete")).await;
    assert!(confirm.text.contains("Delete this binding?") && confirm.text.contains("acct-9"));
    let deleted = b.post(&format!("/console/bindings/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(deleted.headers["location"], "/console/bindings?deleted=1");
    assert_eq!(app.get(&format!("/v1/bindings/{id}"), &w.old_bank).await.status, 404);
    // The API's filters are the page's.
    let api = app.get("/v1/bindings?phoneNumber=%2B8613800138009", &w.old_bank).await.body;
    assert_eq!(api["bindings"].as_array().unwrap().len(), 1);
    assert_eq!(api["bindings"][0]["accountRef"], "acct-7");
}

/// A carrier uploads a lifecycle file with bad rows from its console and downloads the rejections,
/// each with its line.
async fn a_carrier_uploads_a_lifecycle_file_and_downloads_its_rejections(db: TestDb) {
    let app = TestApp::new(db);
    let w = world(&app).await;
    let mut b = signed_in(&app, &w.carrier).await;
    let page = b.get("/console/files").await;
    assert!(page.text.contains("Lifecycle file") && !page.text.contains("Binding file"), "{}", page.text);
    let csrf = csrf_of(&page);
    let csv = b"event_id,phone_number,type,date\nc1,+8613800000101,disconnected,2024-01-01\nc2,+86bad,disconnected,2024-01-01\nc3,+8613800000102,disconnected\n";
    let job = job_of(&b.post_file("/console/files/lifecycle", &[("csrf", &csrf)], Some(("l.csv", csv))).await);
    app.runner.run_until_idle().await.unwrap();
    let done = b.get(&format!("/console/jobs/{job}")).await.text;
    assert!(done.contains("Done") && done.contains("Waiting for the donor"), "{done}");
    let rejected = b.get(&format!("/console/jobs/{job}/rejections.csv")).await.text;
    let lines: Vec<&str> = rejected.lines().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(lines, ["line", "3", "4"], "{rejected}");
    // An institution's session does not see it.
    let mut bank = signed_in(&app, &w.old_bank).await;
    assert_eq!(bank.get(&format!("/console/jobs/{job}")).await.status, 404);
    assert_eq!(bank.get(&format!("/console/jobs/{job}/rejections.csv")).await.status, 404);
}

/// A carrier's SMS gateway page: the codes issued for its numbers counted per day (never a code), a
/// test message signed with the gateway's secret, a new secret shown once; an institution's session
/// is refused the page, and the API's figures are the page's.
async fn a_carrier_tries_its_sms_gateway_and_counts_its_codes(db: TestDb) {
    use crate::holder::ask_code;
    use crate::receiver::verify;
    let app = TestApp::new(db);
    let w = world(&app).await;
    ask_code(&app, N).await;
    ask_code(&app, "+8613800138001").await;
    ask_code(&app, "+8613800999999").await;
    app.sms.run_once().await.unwrap();
    // A carrier without a gateway: its subscriber's code is counted, and counted as not sent.
    let (_, other) = app.participant(store::Role::Carrier, "Carrier B", &["+86139"]).await;
    app.accept(
        &other,
        json!([{"eventId": "b1", "phoneNumber": "+8613900000001", "type": "activated", "date": "2024-01-01"}]),
    )
    .await;
    ask_code(&app, "+8613900000001").await;
    let theirs = app.get("/v1/sms-gateway/codes?days=1", &other).await.body;
    assert_eq!(theirs["days"][0]["codes"], 1);
    assert_eq!(theirs["days"][0]["withoutGateway"], 1);
    let codes_sent = w.gateway.received().len();
    let mut b = signed_in(&app, &w.carrier).await;
    let page = b.get("/console/sms").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Where codes go now") && page.text.contains("127.0.0.1"), "{}", page.text);
    let codes = app.get("/v1/sms-gateway/codes?days=7", &w.carrier).await.body;
    let days = codes["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = days.last().unwrap();
    // Every code its gateway received, and no other.
    assert_eq!(codes_sent, 3);
    assert_eq!((today["codes"].as_u64(), today["withoutGateway"].as_u64()), (Some(3), Some(0)), "{codes}");
    // Today's row (the newest first) says 3; no code sent appears anywhere on the page.
    let body = &page.text[page.text.find("<tbody>").unwrap()..];
    let today_row = &body[..body.find("</tr>").unwrap()];
    assert!(today_row.contains("<td>3</td><td>0</td>"), "today's count on the page: {today_row}");
    for sms in w.gateway.received() {
        let sms: serde_json::Value = serde_json::from_slice(&sms.body).unwrap();
        let code: String = sms["text"].as_str().unwrap().chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(code.len(), 6, "{sms}");
        assert!(!page.text.contains(&code), "never a code");
    }
    let csrf = csrf_of(&page);

    // A test message to one of its numbers, signed with the gateway's secret.
    let tested = b.post("/console/sms/test", &[("csrf", &csrf), ("number", "+86 138 0013 8999")]).await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert!(tested.text.contains("The gateway took the test message: it answered 200"), "{}", tested.text);
    let got = w.gateway.received();
    assert_eq!(got.len(), codes_sent + 1);
    let last = got.last().unwrap();
    assert_eq!(verify(&w.gateway_secret, last), 1);
    let body: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["phoneNumber"], "+8613800138999");
    assert!(!body["text"].as_str().unwrap().chars().any(|c| c.is_ascii_digit()), "no code in a test");
    // Not one of its numbers: said on the form, nothing sent.
    let foreign = b.post("/console/sms/test", &[("csrf", &csrf), ("number", "+4915112345678")]).await;
    assert_eq!(foreign.status, 400);
    assert!(foreign.text.contains("in none of your ranges"), "{}", foreign.text);
    assert_eq!(w.gateway.received().len(), codes_sent + 1);

    // A new secret: shown once; the next message is signed with it, not the old one.
    let rotated = b.post("/console/sms", &[("csrf", &csrf), ("url", &w.gateway_url)]).await;
    assert_eq!(rotated.status, 200);
    let at = rotated.text.find("whsec_").expect("the new secret");
    let secret: String = rotated.text[at..].chars().take_while(|c| *c != '<').collect();
    assert_ne!(secret, w.gateway_secret);
    assert!(!b.get("/console/sms").await.text.contains(&secret), "shown once");
    b.post("/console/sms/test", &[("csrf", &csrf), ("number", "+8613800138999")]).await;
    let last = w.gateway.received().last().unwrap().clone();
    assert_eq!((verify(&secret, &last), verify(&w.gateway_secret, &last)), (1, 0));
    // An address numlink will not call.
    let bad = b.post("/console/sms", &[("csrf", &csrf), ("url", "http://10.0.0.1/sms")]).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("numlink cannot send to this address"));

    // An institution's session: not its page, nor its actions.
    let mut bank = signed_in(&app, &w.old_bank).await;
    let bank_csrf = csrf_of(&bank.get("/console/requests").await);
    assert_eq!(bank.get("/console/sms").await.status, 403);
    assert_eq!(bank.post("/console/sms/test", &[("csrf", &bank_csrf), ("number", N)]).await.status, 403);
    assert_eq!(w.gateway.received().len(), codes_sent + 2);
}
