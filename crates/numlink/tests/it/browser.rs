//! The pages in a real browser: headless Chromium driven through WebDriver (Debian's `chromium` and
//! `chromium-driver`), against a real `numlink serve` on a fresh SQLite file, its codes written to an
//! SMS outbox file. A machine without them skips these tests and says so; with
//! `NUMLINK_BROWSER_REQUIRED=1` (`.ci/run` sets it) a missing browser fails them instead.
//!
//! On every page a person reaches, `Browser::check` runs axe-core (vendored in `vendor/axe-core`) and
//! fails on a serious or critical violation, checks that nothing was fetched from anywhere but numlink
//! and that the page weighs at most 100 KB, and, when `NUMLINK_SCREENSHOTS` names a folder (`cargo
//! xtask screenshots`), saves a picture of it at a phone's width.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::{Server, json_line, numlink, serve, serve_with};

/// axe-core, injected into each page by WebDriver (never served by numlink).
const AXE: &str = include_str!("vendor/axe-core/axe.min.js");
/// The most a page may weigh on first load: the document and everything it fetches.
const PAGE_BYTES_MAX: u64 = 100 * 1024;
/// A phone's viewport, for the pictures.
const PHONE_WIDTH: u32 = 390;

/// A chromedriver and its browser session; both ended on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
    /// The language the pages are expected in (the browser's, until the switch is used), and the
    /// window's size.
    lang: std::sync::Mutex<String>,
    size: (u32, u32),
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }
}

fn installed(var: &str, default: &str) -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()));
    path.exists().then_some(path)
}

/// A headless Chromium of `width`×`height` whose language is `lang`; `None` when the machine has none
/// (and the run does not require one).
async fn browser(lang: &str, width: u32, height: u32) -> Option<Browser> {
    let (Some(chromium), Some(chromedriver)) = (
        installed("NUMLINK_CHROMIUM", "/usr/bin/chromium"),
        installed("NUMLINK_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        let why = "no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)";
        assert!(std::env::var("NUMLINK_BROWSER_REQUIRED").is_err(), "the browser tests must run here, but: {why}");
        eprintln!("NOTE: the browser tests are SKIPPED: {why}");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut driver = Command::new(chromedriver)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // Ready when it says so (no sleeping).
    let mut lines = BufReader::new(driver.stdout.take().expect("piped stdout")).lines();
    loop {
        let line = lines.next().expect("chromedriver exits before it starts").expect("read chromedriver");
        if line.contains("started successfully") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", format!("--user-data-dir={}", profile.path().display()),
                format!("--window-size={width},{height}"), format!("--accept-lang={lang}"), format!("--lang={lang}"),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");
    Some(Browser {
        driver,
        client: Some(client),
        _profile: profile,
        lang: std::sync::Mutex::new(lang.to_string()),
        size: (width, height),
    })
}

async fn text(b: &Browser, css: &str) -> String {
    b.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

/// Presses Tab until `css` has the focus (at most `max` times): the page is usable with the keyboard
/// alone, in a sensible order.
async fn tab_to(b: &Browser, css: &str, max: usize) -> usize {
    let target = b.client().find(Locator::Css(css)).await.unwrap();
    let tab = char::from(fantoccini::key::Key::Tab).to_string();
    for presses in 1..=max {
        b.client().active_element().await.unwrap().send_keys(&tab).await.unwrap();
        if b.client().active_element().await.unwrap().element_id() == target.element_id() {
            return presses;
        }
    }
    panic!("{css} was not reached with {max} presses of Tab");
}

impl Browser {
    /// Checks the page a person just reached: its language, no serious or critical accessibility
    /// violation (axe-core), nothing fetched from elsewhere, at most 100 KB; and saves its picture as
    /// `name` when asked to.
    async fn check(&self, server: &Server, name: &str) {
        let c = self.client();
        let want = if self.lang.lock().unwrap().starts_with("zh") { "zh-CN" } else { "en" };
        let lang = c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap();
        assert_eq!(lang.as_deref(), Some(want), "{name}: the lang attribute");
        c.execute(AXE, vec![]).await.expect("axe-core loads");
        let found = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                   .map((v) => v.id + ': ' + v.help + ' at ' + v.nodes.map((n) => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(violations.is_empty(), "{name} ({want}): {violations:#?}");
        // Nothing wider than the window: no sideways scrolling on a phone.
        let widths =
            c.execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![]).await.unwrap();
        let widths: (u64, u64) = serde_json::from_value(widths).unwrap();
        assert!(widths.0 <= widths.1, "{name}: {} px wide in a {} px window", widths.0, widths.1);
        let fetched = c
            .execute(
                "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
                   .map((e) => [e.name, e.encodedBodySize || 0]);",
                vec![],
            )
            .await
            .unwrap();
        let fetched: Vec<(String, u64)> = serde_json::from_value(fetched).unwrap();
        let elsewhere: Vec<&String> = fetched.iter().map(|f| &f.0).filter(|u| !u.starts_with(&server.base)).collect();
        assert!(elsewhere.is_empty(), "{name}: fetched from elsewhere: {elsewhere:?}");
        let bytes: u64 = fetched.iter().map(|f| f.1).sum();
        assert!(bytes <= PAGE_BYTES_MAX, "{name}: {bytes} bytes on first load ({fetched:?})");
        eprintln!("page {name} ({want}): {bytes} bytes on first load, {} files", fetched.len());
        if let Ok(dir) = std::env::var("NUMLINK_SCREENSHOTS") {
            self.picture(std::path::Path::new(&dir), &format!("{name}-{want}.png")).await;
        }
    }

    /// A picture of the whole page at a phone's width.
    async fn picture(&self, dir: &std::path::Path, file: &str) {
        let c = self.client();
        c.set_window_size(PHONE_WIDTH, self.size.1).await.unwrap();
        let height = c.execute("return document.documentElement.scrollHeight;", vec![]).await.unwrap();
        let height = height.as_u64().unwrap_or(844).max(600) as u32;
        c.set_window_size(PHONE_WIDTH, height + 140).await.unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), png).unwrap();
        c.set_window_size(self.size.0, self.size.1).await.unwrap();
    }

    async fn goto(&self, server: &Server, path: &str) {
        self.client().goto(&format!("{}{path}", server.base)).await.unwrap();
    }

    /// Clicks `css` and waits for the page it leads to (a form's answer, a link's page).
    async fn click(&self, css: &str) {
        self.leaving().await;
        self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
        self.arrived().await;
    }

    /// Clicks `css`, which changes the page on screen without leaving it.
    async fn click_here(&self, css: &str) {
        self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    /// Marks the page on screen, so that `arrived` can tell the next one from it.
    async fn leaving(&self) {
        self.client().execute("document.documentElement.dataset.left = '1';", vec![]).await.unwrap();
    }

    /// Waits until the browser shows a page other than the one marked by `leaving`.
    async fn arrived(&self) {
        self.client().wait().for_element(Locator::Css("html:not([data-left])")).await.unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client().current_url().await.unwrap();
        url.path().to_string() + &url.query().map(|q| format!("?{q}")).unwrap_or_default()
    }

    async fn all_text(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.client().find_all(Locator::Css(css)).await.unwrap() {
            out.push(e.text().await.unwrap());
        }
        out
    }

    /// Types into the focused element (the keyboard alone).
    async fn keys(&self, keys: &str) {
        self.client().active_element().await.unwrap().send_keys(keys).await.unwrap();
    }

    /// Types keys that lead to another page (ending in Enter), and waits for it.
    async fn keys_then_page(&self, keys: &str) {
        self.leaving().await;
        self.keys(keys).await;
        self.arrived().await;
    }
}

impl Browser {
    /// A request made from the page on screen, as its script would make it (same origin, its
    /// cookies, redirects followed): the status, the body and the URL it ended at. `fields` are
    /// posted as a form.
    async fn fetch(&self, method: &str, path: &str, fields: Option<&[(&str, &str)]>) -> (u16, String, String) {
        let fields: Option<Vec<[&str; 2]>> = fields.map(|f| f.iter().map(|(k, v)| [*k, *v]).collect());
        let got = self
            .client()
            .execute_async(
                "const [method, path, fields] = arguments; const done = arguments[arguments.length - 1];
                 const opts = { method, credentials: 'same-origin' };
                 if (fields) opts.body = new URLSearchParams(fields);
                 fetch(path, opts).then(async (r) => done([r.status, await r.text(), new URL(r.url).pathname]))
                   .catch((e) => done([0, String(e), '']));",
                vec![json!(method), json!(path), json!(fields)],
            )
            .await
            .unwrap();
        serde_json::from_value(got).unwrap()
    }

    /// The CSRF token of the page on screen.
    async fn csrf(&self) -> String {
        let field = self.client().find(Locator::Css("input[name=csrf]")).await.unwrap();
        field.prop("value").await.unwrap().unwrap()
    }

    /// Chooses `file` in the upload form of `kind` and sends it; on the job's page, waits until the
    /// job has ended (the page's script follows it, and loads the page again when it ends).
    async fn upload(&self, kind: &str, file: &std::path::Path) {
        let input = self.client().find(Locator::Css(&format!("#file-{kind}"))).await.unwrap();
        input.send_keys(&file.display().to_string()).await.unwrap();
        self.click(&format!("form[action='/console/files/{kind}'] button")).await;
        assert!(self.path().await.starts_with("/console/jobs/job_"), "{}", self.path().await);
        self.client().wait().for_element(Locator::Css("[data-job][data-ended]")).await.unwrap();
    }
}

/// Signs in to the console with `key`.
async fn console_sign_in(b: &Browser, w: &World, key: &str) {
    b.goto(&w.server, "/console").await;
    b.fill("#key", key).await;
    b.click("form[action='/console/sign-in'] button").await;
}

fn enter() -> String {
    char::from(fantoccini::key::Key::Enter).to_string()
}

/// The number whose previous holder's accounts three institutions still have bound.
const N: &str = "+8613800138001";
/// A number with a holder and nothing bound.
const QUIET: &str = "+8613800138002";

/// A registry with a carrier, three institutions holding bindings of `N` made before its holder got
/// it, and one lookup of it; served with an SMS outbox. `holder_toml` is the `[holder]` section.
struct World {
    dir: tempfile::TempDir,
    server: Server,
    carrier: String,
    /// (name, key) of each institution.
    banks: Vec<(String, String)>,
    http: reqwest::Client,
    /// The regulator's key.
    regulator: String,
    /// Codes read from the outbox so far, per number.
    codes_read: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl World {
    async fn new(holder_toml: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("numlink.toml"), format!("[holder]\n{holder_toml}")).unwrap();
        let add = |args: &[&str]| json_line(&numlink(d, &[&["participant", "add"], args].concat()));
        let carrier =
            add(&["--role", "carrier", "--name", "Carrier A", "--prefix", "+86138", "--reporting-since", "2020-01-01"]);
        let banks: Vec<(String, String)> = ["Example Bank", "Harbour Pay", "City Wallet"]
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    add(&["--role", "institution", "--name", name])["apiKey"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let regulator = add(&["--role", "regulator", "--name", "Regulator"])["apiKey"].as_str().unwrap().to_string();
        let server = serve_with(d, &["--sms-outbox", "sms.jsonl"]);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let w = World {
            server,
            carrier: carrier["apiKey"].as_str().unwrap().to_string(),
            banks,
            http: reqwest::Client::new(),
            codes_read: Default::default(),
            regulator,
            dir,
        };
        w.events(&[(N, "activated", "2022-01-10"), (QUIET, "activated", "2023-05-01")]).await;
        for (i, (_, key)) in w.banks.iter().enumerate() {
            // Example Bank has two of the previous holder's accounts; the others one each.
            for a in 0..if i == 0 { 2 } else { 1 } {
                let b = json!({"bindings": [{"accountRef": format!("acct-{i}-{a}"), "phoneNumber": N, "boundOn": "2023-06-01"}]});
                w.call(reqwest::Method::POST, "/v1/bindings", key, Some(b)).await;
            }
        }
        w.events(&[(N, "disconnected", "2024-02-25"), (N, "activated", "2024-09-21")]).await;
        // Example Bank asks whether the number changed hands: a lookup its new holder will see.
        let check = json!({"phoneNumber": N, "specifiedDate": "2023-06-01"});
        let answer = w.call(reqwest::Method::POST, "/number-recycling/v0.2/check", &w.banks[0].1, Some(check)).await;
        assert_eq!(answer["phoneNumberRecycled"], true);
        w
    }

    async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.server.base)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// The carrier reports `(number, type, date)` events.
    async fn events(&self, events: &[(&str, &str, &str)]) {
        let events: Vec<Value> = events
            .iter()
            .map(|(n, kind, date)| json!({"eventId": format!("{n}-{kind}-{date}"), "phoneNumber": n, "type": kind, "date": date}))
            .collect();
        let r = self
            .call(reqwest::Method::POST, "/v1/lifecycle-events", &self.carrier.clone(), Some(json!({"events": events})))
            .await;
        assert_eq!(r["rejected"], json!([]), "{r}");
    }

    /// The next code sent to `number`, from the SMS outbox: each code once, in the order sent, waiting
    /// for the server's log line that says it wrote one (never a timer).
    fn code_for(&self, number: &str) -> String {
        let mut read = self.codes_read.lock().unwrap();
        let seen = read.entry(number.to_string()).or_default();
        loop {
            let outbox = std::fs::read_to_string(self.dir.path().join("sms.jsonl")).unwrap_or_default();
            let codes: Vec<String> = outbox
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|m| m["phoneNumber"] == number)
                .map(|m| m["text"].as_str().unwrap()[..6].to_string())
                .collect();
            if let Some(code) = codes.get(*seen) {
                *seen += 1;
                return code.clone();
            }
            self.server.wait_for_log("a one-time code was written to the SMS outbox");
        }
    }

    /// An institution answers the holder's request: `unbound`, or `rejected` with a reason.
    async fn resolve(&self, bank: usize, outcome: &str, reason: Option<&str>) {
        let key = &self.banks[bank].1;
        let list = self.call(reqwest::Method::GET, "/v1/unbind-requests", key, None).await;
        let id = list["requests"][0]["id"].as_str().expect("a request to this institution").to_string();
        let mut body = json!({"outcome": outcome});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        self.call(reqwest::Method::POST, &format!("/v1/unbind-requests/{id}/resolve"), key, Some(body)).await;
    }
}

/// The phone form and the code form, by clicks: signed in as `number`.
async fn sign_in(b: &Browser, w: &World, number: &str) {
    b.goto(&w.server, "/").await;
    b.fill("#phone", number).await;
    b.click("form[action='/code'] button[type=submit]").await;
    assert_eq!(b.path().await, "/code");
    b.fill("#code", &w.code_for(number)).await;
    b.click("form[action='/session'] button[type=submit]").await;
    assert_eq!(b.path().await, "/institutions");
}

/// Alters one character in the middle of a proof's claims.
fn altered(proof: &str) -> String {
    let mut chars: Vec<char> = proof.chars().collect();
    let i = proof.find('.').unwrap() + 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_holder_asks_every_institution_to_unbind_in_chinese_on_a_phone() {
    let Some(b) = browser("zh-CN", 390, 844).await else { return };
    // Times shown as in Beijing.
    let w = World::new("time_zone = \"Asia/Shanghai\"\n").await;
    let c = b.client();

    // The number.
    b.goto(&w.server, "/").await;
    assert_eq!(text(&b, "h1").await, "您的新号码是否仍绑定着别人的账户？");
    b.check(&w.server, "start").await;
    b.fill("#phone", "+86 138 0013 8001").await;
    b.click("form[action='/code'] button[type=submit]").await;

    // The code, from the SMS.
    assert_eq!(b.path().await, "/code");
    assert!(text(&b, "main [role=status]").await.contains("+8613800138001"));
    // The script (numlink's own file, allowed by the CSP) counts down before another code.
    let resend = c.find(Locator::Css("form.resend button")).await.unwrap();
    assert!(!resend.is_enabled().await.unwrap(), "another code only after the wait");
    assert!(text(&b, "[data-countdown]").await.contains("秒后可重新获取验证码"));
    b.check(&w.server, "code").await;
    b.fill("#code", &w.code_for(N)).await;
    b.click("form[action='/session'] button[type=submit]").await;

    // The institutions that bound it before her: names and counts, nothing about the accounts.
    assert_eq!(b.path().await, "/institutions");
    let cards = b.all_text(".card").await;
    assert_eq!(cards.len(), 3, "{cards:?}");
    assert_eq!(cards[1], "Example Bank 2 个账户", "by name, each with its count: {cards:?}");
    assert!(cards.iter().all(|c| !c.contains("acct-")), "no account reference: {cards:?}");
    b.check(&w.server, "institutions").await;

    // All of them, confirmed.
    b.click("button[name=all]").await;
    assert_eq!(text(&b, "h1").await, "确认申请解绑？");
    assert_eq!(b.all_text(".chosen li").await, vec!["City Wallet", "Example Bank", "Harbour Pay"]);
    b.check(&w.server, "confirm").await;
    b.click("form[action='/unbind'] button[type=submit]").await;

    // The status page.
    assert_eq!(b.path().await, "/requests?asked=3");
    assert_eq!(text(&b, ".notice").await, "您的申请已发送给 3 个机构。");
    assert_eq!(b.all_text(".card .state").await, vec!["已申请，等待答复"; 3]);
    // Two answer: one unbinds, one refuses under a legal hold; she sees why, in plain words.
    w.resolve(1, "unbound", None).await;
    w.resolve(0, "rejected", Some("legal_hold")).await;
    b.goto(&w.server, "/requests").await;
    let cards = b.all_text(".card").await;
    let of = |name: &str| cards.iter().find(|c| c.contains(name)).cloned().unwrap();
    assert!(of("Harbour Pay").contains("已解绑"), "{cards:?}");
    assert!(of("Example Bank").contains("已拒绝") && of("Example Bank").contains("法院命令或监管规定"), "{cards:?}");
    assert!(of("City Wallet").contains("已申请，等待答复") && of("City Wallet").contains("（UTC+8）"), "{cards:?}");
    b.check(&w.server, "requests").await;

    // The proof of tenure: what it states, the text, a download, the QR code.
    b.click("nav.holder a[href='/proof']").await;
    let claims = b.all_text(".claims dd").await;
    assert_eq!(claims[0], N);
    assert_eq!(claims[1], "2024年10月1日", "held since the first of the month after her activation");
    assert_eq!(claims[3], "numlink");
    let proof = c.find(Locator::Css("#proof")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(proof.starts_with("eyJ"), "{proof}");
    let download = c.find(Locator::Css("a[download]")).await.unwrap().attr("href").await.unwrap().unwrap();
    assert!(download.starts_with("data:text/plain") && download.ends_with(&proof), "the download is this proof");
    let qr = c.find(Locator::Css("figure.qr svg")).await.unwrap();
    assert!(qr.attr("viewBox").await.unwrap().is_some(), "the QR code is an SVG");
    // Copy: a button the script shows, which says it copied.
    b.click_here("button[data-copy]").await;
    c.wait().for_element(Locator::XPath("//p[@id='copy-status' and normalize-space() != '']")).await.unwrap();
    assert_eq!(text(&b, "#copy-status").await, "已复制。");
    b.check(&w.server, "proof").await;

    // A clerk opens the QR code's link: valid, with what it states. An altered proof is not.
    let link = c.find(Locator::Css("a[href*='/verify?token=']")).await.unwrap().attr("href").await.unwrap().unwrap();
    c.goto(&link).await.unwrap();
    assert_eq!(text(&b, ".verdict").await, "✓ 有效");
    assert!(text(&b, ".result").await.contains(N));
    b.check(&w.server, "verify-valid").await;
    b.goto(&w.server, &format!("/verify?token={}", altered(&proof))).await;
    assert_eq!(text(&b, ".verdict").await, "✗ 无效");
    b.check(&w.server, "verify-invalid").await;

    // Who looked the number up.
    b.goto(&w.server, "/lookups").await;
    let rows = b.all_text("tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("Example Bank") && rows[0].contains("号码是否已易主"), "{rows:?}");
    b.check(&w.server, "lookups").await;

    // Signing out ends the session in this browser.
    b.click("form[action='/sign-out'] button").await;
    assert_eq!(b.path().await, "/?signed-out=1");
    assert!(text(&b, ".notice").await.contains("您已退出"));
    b.goto(&w.server, "/institutions").await;
    assert_eq!(b.path().await, "/", "no session: the first page");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_holder_asks_two_institutions_in_english_with_the_keyboard_alone() {
    let Some(b) = browser("en-GB", 1280, 800).await else { return };
    let w = World::new("").await;
    let c = b.client();
    b.goto(&w.server, "/").await;
    assert_eq!(text(&b, "h1").await, "Is your new number still bound to someone else's accounts?");
    b.check(&w.server, "start").await;

    // Tab to the number, type it, Enter.
    let presses = tab_to(&b, "#phone", 10).await;
    assert!(presses <= 6, "the number is among the first stops ({presses} presses)");
    b.keys_then_page(&format!("+8613800138001{}", enter())).await;
    assert_eq!(b.path().await, "/code");
    b.check(&w.server, "code").await;
    // The code field has the focus already.
    let code = w.code_for(N);
    b.keys_then_page(&format!("{code}{}", enter())).await;
    assert_eq!(b.path().await, "/institutions");
    b.check(&w.server, "institutions").await;

    // Space ticks City Wallet and Harbour Pay (listed by name); Tab on to "Ask the ones I chose".
    let space = " ";
    tab_to(&b, "#i-1", 20).await;
    b.keys(space).await;
    tab_to(&b, "#i-3", 3).await;
    b.keys(space).await;
    tab_to(&b, "button[name=pick]", 3).await;
    b.keys_then_page(&enter()).await;
    assert_eq!(b.all_text(".chosen li").await, vec!["City Wallet", "Harbour Pay"]);
    b.check(&w.server, "confirm").await;
    tab_to(&b, "form[action='/unbind'] button[type=submit]", 20).await;
    b.keys_then_page(&enter()).await;
    assert_eq!(text(&b, ".notice").await, "Your request was sent to 2 institutions.");
    let states = b.all_text(".card .state").await;
    assert_eq!(states, vec!["Asked, waiting for an answer"; 2]);
    b.check(&w.server, "requests").await;

    // Example Bank can still be asked; the others show their requests.
    b.goto(&w.server, "/institutions").await;
    let boxes = c.find_all(Locator::Css("input[type=checkbox]")).await.unwrap();
    assert_eq!(boxes.len(), 1, "only Example Bank is left to ask");
    assert!(text(&b, ".cards").await.contains("Answer due by"));

    // On to the proof by the navigation, then sign out, with the keyboard.
    tab_to(&b, "nav.holder a[href='/proof']", 10).await;
    b.keys_then_page(&enter()).await;
    assert_eq!(b.path().await, "/proof");
    assert_eq!(b.all_text(".claims dd").await[1], "1 October 2024");
    b.check(&w.server, "proof").await;
    let proof = c.find(Locator::Css("#proof")).await.unwrap().prop("value").await.unwrap().unwrap();
    tab_to(&b, "nav.holder a[href='/lookups']", 10).await;
    b.keys_then_page(&enter()).await;
    assert!(text(&b, "tbody").await.contains("Example Bank"));
    b.check(&w.server, "lookups").await;
    tab_to(&b, "form[action='/sign-out'] button", 10).await;
    b.keys_then_page(&enter()).await;
    assert_eq!(b.path().await, "/?signed-out=1");
    assert!(text(&b, ".notice").await.contains("You have signed out"));
    // A clerk checks the proof she copied, and an altered one.
    b.goto(&w.server, &format!("/verify?token={proof}")).await;
    assert_eq!(text(&b, ".verdict").await, "✓ Valid");
    b.check(&w.server, "verify-valid").await;
    b.goto(&w.server, &format!("/verify?token={}", altered(&proof))).await;
    assert_eq!(text(&b, ".verdict").await, "✗ Not valid");
    b.check(&w.server, "verify-invalid").await;
    b.close().await;
}

/// Each refusal a person can meet, in `lang`: its page, its words, what to do next.
async fn error_states(lang: &str) {
    // The narrowest phone the pages are made for.
    let Some(b) = browser(lang, 360, 740).await else { return };
    let zh = lang.starts_with("zh");
    let say = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    // Three tries a code, five wrong in a row lock the number, two codes an hour per number.
    let w = World::new(
        "otp_resend_wait_secs = 0\notp_attempts_max = 3\notp_failures_before_lock = 5\notp_sends_per_hour_max = 2\n",
    )
    .await;
    let c = b.client();
    let send_code = || b.click("form[action='/code'] button[type=submit]");
    let send_session = || b.click("form[action='/session'] button[type=submit]");

    // A number numlink cannot read, then one it does not cover.
    b.goto(&w.server, "/").await;
    b.fill("#phone", "138 0013").await;
    send_code().await;
    assert!(text(&b, "#phone-error").await.contains(say("国家代码", "country code")));
    let invalid = c.find(Locator::Css("#phone")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    b.check(&w.server, "number-invalid").await;
    b.fill("#phone", "+44 20 7946 0000").await;
    send_code().await;
    assert_eq!(text(&b, "h1").await, say("numlink 不覆盖这个号码", "numlink does not cover this number"));
    b.check(&w.server, "not-covered").await;

    // Nothing to unbind: QUIET's holder signs in and finds no institution.
    sign_in(&b, &w, QUIET).await;
    assert_eq!(text(&b, ".empty h2").await, say("没有需要解绑的绑定", "Nothing to unbind"));
    b.check(&w.server, "nothing-to-unbind").await;

    // A session that ended: its token no longer good (here one numlink never made: a machine's clock
    // cannot be moved 15 minutes on). The page says so, and what to do.
    c.delete_cookie("nl_session").await.unwrap();
    c.execute("document.cookie = 'nl_session=nlh_over; path=/; samesite=strict';", vec![]).await.unwrap();
    b.goto(&w.server, "/requests").await;
    assert_eq!(text(&b, "h1").await, say("您的会话已结束", "Your session has ended"));
    b.check(&w.server, "session-ended").await;
    // Without a session at all (as after following a link from another site), the first page.
    b.goto(&w.server, "/proof").await;
    assert_eq!(b.path().await, "/");

    // Code sending limited: a third code within the hour for QUIET.
    b.goto(&w.server, "/").await;
    b.fill("#phone", QUIET).await;
    send_code().await;
    w.code_for(QUIET);
    b.goto(&w.server, "/").await;
    b.fill("#phone", QUIET).await;
    send_code().await;
    assert_eq!(text(&b, "h1").await, say("此号码的验证码发送过于频繁", "Too many codes for this number"));
    assert!(text(&b, "main").await.contains("UTC"), "when to try again");
    b.check(&w.server, "sends-limited").await;

    // An expired (or used, or unknown) code: the code step names a challenge numlink no longer has
    // (set from the page: a machine's clock cannot be moved ten minutes on here).
    c.delete_cookie("nl_code").await.unwrap();
    let forget = "document.cookie = 'nl_code=8613800138002.otp_00000000000000000000.0; path=/; samesite=strict';";
    c.execute(forget, vec![]).await.unwrap();
    b.goto(&w.server, "/code").await;
    b.fill("#code", "123456").await;
    send_session().await;
    assert_eq!(text(&b, "h1").await, say("验证码已过期", "This code has expired"));
    b.check(&w.server, "code-expired").await;

    // A wrong code: said on the code page with the tries left; then out of tries.
    b.goto(&w.server, "/").await;
    b.fill("#phone", N).await;
    send_code().await;
    let wrong = if w.code_for(N) == "000000" { "111111" } else { "000000" };
    b.fill("#code", wrong).await;
    send_session().await;
    assert!(text(&b, "#code-error").await.contains(say("还可以再试 2 次", "2 more tries")));
    b.check(&w.server, "code-wrong").await;
    for _ in 0..2 {
        b.fill("#code", wrong).await;
        send_session().await;
    }
    assert_eq!(text(&b, "h1").await, say("验证码尝试次数过多", "Too many tries with this code"));
    b.check(&w.server, "out-of-tries").await;

    // A new code from that page; two more wrong codes make five in a row: the number is locked.
    send_code().await;
    assert_eq!(b.path().await, "/code");
    let wrong = if w.code_for(N) == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        b.fill("#code", wrong).await;
        send_session().await;
    }
    assert_eq!(text(&b, "h1").await, say("此号码暂时被锁定", "This number is locked for now"));
    b.check(&w.server, "locked").await;

    // The number changed hands since she signed in: the carrier reports it reissued.
    let moved = "+8613800138003";
    w.events(&[(moved, "activated", "2023-01-01")]).await;
    sign_in(&b, &w, moved).await;
    w.events(&[(moved, "disconnected", "2025-01-01"), (moved, "activated", "2025-06-01")]).await;
    b.goto(&w.server, "/institutions").await;
    assert_eq!(text(&b, "h1").await, say("号码已易主", "The number changed hands"));
    b.check(&w.server, "hands-changed").await;
    // The session is over for good: its cookie is gone.
    b.goto(&w.server, "/proof").await;
    assert_eq!(b.path().await, "/");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_state_has_a_page_that_says_what_to_do_in_chinese() {
    error_states("zh-CN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_state_has_a_page_that_says_what_to_do_in_english() {
    error_states("en").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_without_its_csrf_token_is_refused() {
    let Some(b) = browser("en", 390, 844).await else { return };
    let w = World::new("").await;
    sign_in(&b, &w, N).await;
    // The form as a forger would send it: without the token.
    b.client()
        .execute("document.querySelector(\"form[action='/sign-out'] input[name=csrf]\").remove();", vec![])
        .await
        .unwrap();
    b.click("form[action='/sign-out'] button").await;
    assert_eq!(text(&b, "h1").await, "This form could not be accepted");
    b.check(&w.server, "csrf").await;
    // Still signed in: nothing happened.
    b.goto(&w.server, "/institutions").await;
    assert_eq!(b.all_text(".card").await.len(), 3);
    // From outside the browser, with neither cookie nor token: refused, nothing sent.
    let r = w
        .http
        .post(format!("{}/code", w.server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("phone=%2B8613800138001")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_checks_a_proof_in_a_phone_browser_with_the_keyboard_alone() {
    let Some(b) = browser("zh-CN", 390, 844).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let c = b.client();
    c.goto(&format!("{}/verify", server.base)).await.unwrap();
    // Chinese, as the browser asks.
    assert_eq!(text(&b, "h1").await, "核验号码持有证明");
    b.check(&server, "verify").await;
    assert_eq!(c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap().as_deref(), Some("zh-CN"));
    // The keyboard alone: to the field, type, to the button, Enter.
    let presses = tab_to(&b, "textarea#token", 8).await;
    assert!(presses <= 5, "the field is among the first stops ({presses} presses)");
    c.active_element().await.unwrap().send_keys("not-a-proof").await.unwrap();
    tab_to(&b, "button[type=submit]", 2).await;
    c.active_element().await.unwrap().send_keys(&char::from(fantoccini::key::Key::Enter).to_string()).await.unwrap();
    c.wait().for_element(Locator::Css(".result.invalid")).await.unwrap();
    assert_eq!(text(&b, ".verdict").await, "✗ 无效");
    assert_eq!(
        c.find(Locator::Css("textarea#token")).await.unwrap().prop("value").await.unwrap().as_deref(),
        Some("not-a-proof")
    );
    // The switch: English, and it stays English.
    c.find(Locator::Css("a[hreflang=en]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("html[lang=en]")).await.unwrap();
    assert_eq!(text(&b, ".verdict").await, "✗ Not valid", "the same check, now in English");
    c.goto(&format!("{}/verify", server.base)).await.unwrap();
    assert_eq!(text(&b, "h1").await, "Check a proof of tenure");
    *b.lang.lock().unwrap() = "en".into();
    b.check(&server, "verify").await;
    // Nothing was fetched from anywhere but numlink.
    let fetched = c.execute("return performance.getEntriesByType('resource').map(e => e.name)", vec![]).await.unwrap();
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(!fetched.is_empty(), "the stylesheet at least");
    assert!(fetched.iter().all(|u| u.starts_with(&server.base)), "{fetched:?}");
    b.close().await;
}

impl World {
    /// The holder of `N` asks every institution to unbind, through the API.
    async fn holder_asks_all(&self) {
        let post = |path: &str, body: Value| self.http.post(format!("{}{path}", self.server.base)).json(&body).send();
        let otp: Value = post("/v1/holder/otp", json!({"phoneNumber": N})).await.unwrap().json().await.unwrap();
        let code = self.code_for(N);
        let session: Value =
            post("/v1/holder/session", json!({"phoneNumber": N, "challengeId": otp["challengeId"], "code": code}))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let token = session["token"].as_str().unwrap();
        self.call(reqwest::Method::POST, "/v1/holder/unbind-requests", token, Some(json!({"all": true}))).await;
    }
}

/// An institution's operator signs in with its key, finds the request on its queue, reads the accounts
/// and the holder's proof, refuses it with a reason, and signs out: in `lang`, at `width`×`height`.
async fn an_institution_answers(lang: &str, width: u32, height: u32) {
    let Some(b) = browser(lang, width, height).await else { return };
    let zh = lang.starts_with("zh");
    let say = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let w = World::new("").await;
    w.holder_asks_all().await;
    b.goto(&w.server, "/console").await;
    assert_eq!(text(&b, "h1").await, say("登录 numlink 控制台", "Sign in to your numlink console"));
    b.check(&w.server, "console-sign-in").await;
    b.fill("#key", "nlk_wrong").await;
    b.click("form[action='/console/sign-in'] button").await;
    assert!(
        text(&b, "#key-error").await.starts_with(say("numlink 不认识这个密钥", "This key is not one numlink knows"))
    );
    b.fill("#key", &w.banks[0].1).await;
    b.click("form[action='/console/sign-in'] button").await;

    // The queue: one request, due in five working days.
    assert_eq!(b.path().await, "/console/requests");
    let rows = b.all_text(".queue li").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains(say("还剩", "days left")), "{rows:?}");
    b.check(&w.server, "console-requests").await;
    b.click(".queue a").await;

    // The request: Example Bank's two accounts, the proof valid.
    assert_eq!(b.all_text("tbody td:first-child").await, vec!["acct-0-0", "acct-0-1"]);
    assert_eq!(text(&b, ".result .verdict").await, say("✓ 有效", "✓ Valid"));
    b.check(&w.server, "console-request").await;
    b.click_here("#outcome-rejected").await;
    b.client().find(Locator::Css("#reason option[value=legal_hold]")).await.unwrap().click().await.unwrap();
    b.click("form[action$='/resolve'] button[type=submit]").await;
    assert_eq!(
        text(&b, ".notice").await,
        say("您的答复已记录，申请人可以看到。", "Your answer was recorded, and the person who asked can see it.")
    );
    assert_eq!(text(&b, "dd.state").await, say("已拒绝", "Refused"), "the answer stands on the page");
    b.check(&w.server, "console-answered").await;

    // The notifications: the unacknowledged ones ticked and acknowledged in one go.
    b.click("nav.holder a[href='/console/notifications']").await;
    let boxes = b.client().find_all(Locator::Css("input[name=id]")).await.unwrap();
    assert_eq!(boxes.len(), 5, "two accounts disconnected and reissued, and the request");
    b.check(&w.server, "console-notifications").await;
    for cb in boxes.iter().take(2) {
        cb.click().await.unwrap();
    }
    b.click("form[action='/console/notifications/ack'] button[type=submit]").await;
    assert_eq!(text(&b, ".notice").await, say("已确认 2 条通知。", "2 notifications acknowledged."));
    assert_eq!(b.client().find_all(Locator::Css("input[name=id]")).await.unwrap().len(), 3);

    // A webhook endpoint at a real receiver: added, its secret shown once; a test event reaches the
    // receiver, and its delivery is in the endpoint's log.
    let (hooks, mut got) = crate::local_receiver().await;
    b.click("nav.holder a[href='/console/endpoints']").await;
    b.fill("#url", &format!("{hooks}/hook")).await;
    b.click("form[action='/console/endpoints'] button[type=submit]").await;
    let secret = b.client().find(Locator::Css("#secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.check(&w.server, "console-endpoints").await;
    b.click("ul.cards a.button[href^='/console/endpoints/whe_']").await;
    b.click("form[action$='/test'] button").await;
    assert!(text(&b, ".notice").await.starts_with(say("测试事件正在发往此端点", "A test event is on its way")));
    let event = crate::next_on(&mut got, "/hook").await;
    assert_eq!(event["type"], "webhook.test");
    tokio::task::block_in_place(|| w.server.wait_for_log("delivery attempts recorded"));
    b.click("p.hint a[href^='/console/endpoints/whe_']").await;
    assert_eq!(text(&b, ".cards .state").await, say("已送达", "Delivered"));
    assert!(text(&b, ".cards dl").await.contains("204"), "the receiver's answer is in the log");
    b.check(&w.server, "console-endpoint").await;

    // A binding file with a bad row: uploaded, followed until it ends, its rejected row downloaded.
    let file = w.dir.path().join("bindings.csv");
    std::fs::write(
        &file,
        "account_ref,phone_number,bound_on\nacct-new-1,+8613800138002,2023-06-01\nacct-new-2,not-a-number,2023-06-01\n",
    )
    .unwrap();
    b.click("nav.holder a[href='/console/files']").await;
    b.check(&w.server, "console-files").await;
    b.upload("bindings", &file).await;
    assert_eq!(text(&b, "[data-field=stateWords]").await, say("已完成", "Done"));
    assert_eq!(b.all_text("dl.counts dd").await, vec!["2", "1", "0", "1"], "read, accepted, duplicates, rejected");
    b.check(&w.server, "console-job").await;
    let href = b.client().find(Locator::Css("a[href$='/rejections.csv']")).await.unwrap().attr("href").await.unwrap();
    let (status, csv, _) = b.fetch("GET", &href.unwrap(), None).await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("line,code,message\n3,INVALID_ARGUMENT,"), "{csv}");

    // The binding found by its account reference.
    b.click("nav.holder a[href='/console/bindings']").await;
    b.fill("#q", "acct-new-1").await;
    b.click("form[action='/console/bindings'] button").await;
    assert_eq!(b.all_text("ul.cards .inst").await, vec!["acct-new-1"]);
    b.check(&w.server, "console-bindings").await;

    // Signing out ends the session: the pages ask to sign in again.
    b.click("form[action='/console/sign-out'] button").await;
    assert_eq!(b.path().await, "/console");
    b.goto(&w.server, "/console/requests").await;
    assert_eq!(b.path().await, "/console", "signed out: the sign-in page");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_answers_a_request_in_its_console_in_chinese_on_a_phone() {
    an_institution_answers("zh-CN", 390, 844).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_answers_a_request_in_its_console_in_english() {
    an_institution_answers("en", 1280, 800).await;
}

/// The regulator signs in, reads who answers on time, sorts the table, picks a period, and finds the
/// CSV: in `lang`, at `width`×`height`.
async fn the_regulator_reads_the_report(lang: &str, width: u32, height: u32) {
    let Some(b) = browser(lang, width, height).await else { return };
    let zh = lang.starts_with("zh");
    let say = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let w = World::new("").await;
    w.holder_asks_all().await;
    w.resolve(1, "unbound", None).await;
    b.goto(&w.server, "/console").await;
    b.fill("#key", &w.regulator).await;
    b.click("form[action='/console/sign-in'] button").await;
    assert_eq!(b.path().await, "/console/report");
    assert_eq!(text(&b, "h1").await, say("哪些机构按时答复", "Who answers on time"));
    let rows = b.all_text("table.report tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    b.check(&w.server, "console-report").await;
    // Sort by name: the heading's link, then the other way.
    b.click("th:first-child a").await;
    let names: Vec<String> = b.all_text("table.report tbody th").await;
    assert_eq!(names, vec!["City Wallet", "Example Bank", "Harbour Pay"]);
    b.click("th:first-child a").await;
    assert_eq!(b.all_text("table.report tbody th").await, vec!["Harbour Pay", "Example Bank", "City Wallet"]);
    // A period before anything happened: no request in it.
    b.fill("#from", "01/01/2020").await;
    b.fill("#to", "01/31/2020").await;
    b.click("form.period button").await;
    let url = b.path().await;
    assert!(url.contains("from=2020-01-01") && url.contains("to=2020-01-31"), "{url}");
    let opens: Vec<String> = b.all_text("table.report tbody td:nth-of-type(1)").await;
    assert!(opens.iter().all(|o| o == "0"), "{opens:?}");
    // The CSV of that period.
    let csv = b
        .client()
        .find(Locator::Css("a[href^='/console/report.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(csv.contains("from=2020-01-01"), "{csv}");
    let (status, body, _) = b.fetch("GET", &csv, None).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("institution_id,name,open,overdue,"), "{body}");
    assert_eq!(body.lines().count(), 4, "a line per institution: {body}");
    // No request in that period: each chart says so instead of drawing nothing.
    assert_eq!(b.client().find_all(Locator::Css("figure.chart svg")).await.unwrap().len(), 0);
    assert_eq!(b.all_text("figure.chart .empty").await.len(), 3);
    // All of it: the answered request and the notifications drawn, each with its table.
    b.goto(&w.server, "/console/report").await;
    assert_eq!(b.client().find_all(Locator::Css("figure.chart .drawing svg")).await.unwrap().len(), 2);
    assert_eq!(b.client().find_all(Locator::Css("figure.chart table.visually-hidden")).await.unwrap().len(), 2);
    b.check(&w.server, "console-report-charts").await;

    // The carrier, in the same browser after sign-out: its ranges, and what it reported for N.
    b.click("form[action='/console/sign-out'] button").await;
    b.fill("#key", &w.carrier).await;
    b.click("form[action='/console/sign-in'] button").await;
    assert_eq!(b.path().await, "/console/home");
    assert!(text(&b, ".claims").await.contains("+86138"));
    b.fill("#number", N).await;
    b.click("form[action='/console/home'] button").await;
    let kinds = b.all_text("tbody td:nth-of-type(2)").await;
    assert_eq!(kinds.len(), 3, "activated, disconnected, activated: {kinds:?}");
    b.check(&w.server, "console-carrier").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regulator_reads_the_report_in_chinese_on_a_phone() {
    the_regulator_reads_the_report("zh-CN", 390, 844).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regulator_reads_the_report_in_english() {
    the_regulator_reads_the_report("en-US", 1280, 800).await;
}

/// A carrier's operator uploads a lifecycle file with bad rows, follows it, downloads the rejections,
/// sets its SMS gateway to a real receiver and sends a test message through it: in `lang`.
async fn a_carrier_works_its_console(lang: &str, width: u32, height: u32) {
    let Some(b) = browser(lang, width, height).await else { return };
    let zh = lang.starts_with("zh");
    let say = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
    let w = World::new("").await;
    let (gateway, mut got) = crate::local_receiver().await;
    console_sign_in(&b, &w, &w.carrier).await;
    assert_eq!(b.path().await, "/console/home");
    b.click("nav.holder a[href='/console/files']").await;
    let file = w.dir.path().join("lifecycle.csv");
    std::fs::write(
        &file,
        "event_id,phone_number,type,date\n\
         m1,+8613800138077,activated,2024-03-01\n\
         m2,+8613800138078,activated,2024-13-01\n\
         m3,+4915112345678,activated,2024-03-01\n",
    )
    .unwrap();
    b.upload("lifecycle", &file).await;
    assert_eq!(text(&b, "[data-field=stateWords]").await, say("已完成", "Done"));
    assert_eq!(b.all_text("dl.counts dd").await, vec!["3", "1", "0", "0", "2"]);
    b.check(&w.server, "console-carrier-job").await;
    let href = b.client().find(Locator::Css("a[href$='/rejections.csv']")).await.unwrap().attr("href").await.unwrap();
    let (status, csv, _) = b.fetch("GET", &href.unwrap(), None).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(lines, vec!["line", "3", "4"], "{csv}");

    // The SMS gateway: set at the receiver, its secret shown once, and a test message through it.
    b.click("nav.holder a[href='/console/sms']").await;
    assert!(text(&b, "main").await.contains(say("尚未设置网关", "No gateway is set")));
    b.fill("#url", &format!("{gateway}/sms")).await;
    b.click("form[action='/console/sms'] button[type=submit]:not(.secondary)").await;
    let secret = b.client().find(Locator::Css("#secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.fill("#number", "+86 138 0013 8077").await;
    b.click("form[action='/console/sms/test'] button").await;
    assert!(text(&b, "p.notice").await.contains("204"), "the gateway's answer");
    let message = crate::next_on(&mut got, "/sms").await;
    assert_eq!(message["phoneNumber"], "+8613800138077");
    assert_eq!(b.all_text("table tbody tr").await.len(), 30, "a row a day");
    b.check(&w.server, "console-sms").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_sends_a_file_and_tries_its_gateway_in_chinese_on_a_phone() {
    a_carrier_works_its_console("zh-CN", 390, 844).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_sends_a_file_and_tries_its_gateway_in_english() {
    a_carrier_works_its_console("en", 1280, 800).await;
}

/// One institution's session asks, by id, for another's request, binding, endpoint, delivery and
/// job, and does each action on them: every one is refused with the page an unknown id gets, byte for
/// byte, so nothing says whether the object exists. A carrier's session and a holder's session are
/// refused the institution's pages, and a form without its token does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_reaches_another_organisations_objects() {
    let Some(b) = browser("en", 1280, 800).await else { return };
    let w = World::new("").await;
    w.holder_asks_all().await;
    let (hooks, mut got) = crate::local_receiver().await;
    // Harbour Pay's objects, made through the API.
    let theirs = &w.banks[1].1;
    let get = |path: &'static str| w.call(reqwest::Method::GET, path, theirs, None);
    let request = get("/v1/unbind-requests").await["requests"][0]["id"].as_str().unwrap().to_string();
    let binding = get("/v1/bindings").await["bindings"][0]["id"].as_str().unwrap().to_string();
    let endpoint = w
        .call(reqwest::Method::POST, "/v1/webhook-endpoints", theirs, Some(json!({"url": format!("{hooks}/hook")})))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let test = format!("/v1/webhook-endpoints/{endpoint}/test");
    let delivery =
        w.call(reqwest::Method::POST, &test, theirs, None).await["notificationId"].as_str().unwrap().to_string();
    crate::next_on(&mut got, "/hook").await;
    let upload = w
        .http
        .post(format!("{}/v1/check-files", w.server.base))
        .bearer_auth(theirs)
        .body("phone_number,date\n+8613800138001,2023-01-01\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 202);
    let job: Value = upload.json().await.unwrap();
    let job = job["jobId"].as_str().unwrap().to_string();

    console_sign_in(&b, &w, &w.banks[0].1).await;
    let csrf = b.csrf().await;
    let unknown = |prefix: &str| format!("{prefix}_00000000000000000000");
    let pages = |r: &str, bi: &str, e: &str, d: &str, j: &str| {
        vec![
            ("GET", format!("/console/requests/{r}")),
            ("POST", format!("/console/requests/{r}/resolve")),
            ("GET", format!("/console/bindings/{bi}/delete")),
            ("POST", format!("/console/bindings/{bi}/delete")),
            ("GET", format!("/console/endpoints/{e}")),
            ("GET", format!("/console/endpoints/{e}/delete")),
            ("POST", format!("/console/endpoints/{e}/delete")),
            ("POST", format!("/console/endpoints/{e}/rotate")),
            ("POST", format!("/console/endpoints/{e}/test")),
            ("POST", format!("/console/endpoints/{e}/enable")),
            ("POST", format!("/console/endpoints/{e}/deliveries/{d}/replay")),
            ("GET", format!("/console/jobs/{j}")),
            ("GET", format!("/console/jobs/{j}/progress")),
            ("GET", format!("/console/jobs/{j}/rejections.csv")),
            ("GET", format!("/console/jobs/{j}/result.csv")),
        ]
    };
    let real = pages(&request, &binding, &endpoint, &delivery, &job);
    let none = pages(&unknown("unb"), &unknown("bnd"), &unknown("whe"), &unknown("ntf"), &unknown("job"));
    for ((method, path), (_, nobody)) in real.iter().zip(&none) {
        let form = [("csrf", csrf.as_str()), ("outcome", "unbound")];
        let fields = (*method == "POST").then_some(&form[..]);
        let (status, body, _) = b.fetch(method, path, fields).await;
        let (unknown_status, unknown_body, _) = b.fetch(method, nobody, fields).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        // The same answer, but for the id itself where an answer names the id it was asked for.
        let named = |text: &str, ids: [&str; 5]| ids.iter().fold(text.to_string(), |t, id| t.replace(id, "ID"));
        let body = named(&body, [&request, &binding, &endpoint, &delivery, &job]);
        let unknown_ids = [unknown("unb"), unknown("bnd"), unknown("whe"), unknown("ntf"), unknown("job")];
        let unknown_body = named(&unknown_body, unknown_ids.each_ref().map(String::as_str));
        assert_eq!((status, &body), (unknown_status, &unknown_body), "{method} {path} tells it exists");
    }
    // Nothing was done to them.
    assert_eq!(get("/v1/unbind-requests").await["requests"][0]["state"], "open");
    assert_eq!(get("/v1/bindings").await["bindings"][0]["id"], binding.as_str());
    assert_eq!(get("/v1/webhook-endpoints").await["endpoints"].as_array().unwrap().len(), 1);
    // A form without its token: refused, nothing done.
    let (status, _, _) = b.fetch("POST", "/console/endpoints", Some(&[("url", "https://bank.example/x")])).await;
    assert_eq!(status, 403);
    assert_eq!(
        w.call(reqwest::Method::GET, "/v1/webhook-endpoints", &w.banks[0].1, None).await["endpoints"],
        json!([])
    );
    b.click("form[action='/console/sign-out'] button").await;

    // A carrier's session: the institution's pages are not for it.
    console_sign_in(&b, &w, &w.carrier).await;
    for path in ["/console/requests", "/console/notifications", "/console/endpoints", "/console/bindings"] {
        let (status, body, _) = b.fetch("GET", path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // By id: refused for its role, whether or not the id is anyone's.
    let theirs = b.fetch("GET", &format!("/console/requests/{request}"), None).await;
    let nobodys = b.fetch("GET", &format!("/console/requests/{}", unknown("unb")), None).await;
    assert_eq!((theirs.0, &theirs.1), (403, &nobodys.1));
    b.click("form[action='/console/sign-out'] button").await;

    // A holder's session (the portal's) is no console session: each page asks to sign in.
    sign_in(&b, &w, N).await;
    for path in ["/console/requests", &format!("/console/requests/{request}"), &format!("/console/jobs/{job}")] {
        let (status, _, at) = b.fetch("GET", path, None).await;
        assert_eq!((status, at.as_str()), (200, "/console"), "{path}: the sign-in page");
    }
    b.close().await;
}

/// A console session unused for longer than `console_idle_secs` (30 minutes, the default) ends: the
/// next page the operator asks for is the sign-in page, saying why. Rather than wait half an hour, the
/// test ages the session where the server keeps it: its last use, in the database, two hours back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_console_session_is_sent_to_sign_in() {
    let Some(b) = browser("zh-CN", 390, 844).await else { return };
    let w = World::new("").await;
    console_sign_in(&b, &w, &w.banks[0].1).await;
    assert_eq!(b.path().await, "/console/requests");
    let db = rusqlite::Connection::open(w.dir.path().join("numlink.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let two_hours_ago =
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2)).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let aged = db.execute("UPDATE console_sessions SET seen_at = ?1", [&two_hours_ago]).unwrap();
    assert_eq!(aged, 1, "the one session signed in");
    b.click("nav.holder a[href='/console/notifications']").await;
    assert_eq!(b.path().await, "/console?ended=1");
    assert!(text(&b, "p.notice").await.contains("您的会话因 30 分钟未使用而结束"), "{}", text(&b, "p.notice").await);
    b.check(&w.server, "console-ended").await;
    // Signing in again goes on where the operator was asked to begin.
    b.fill("#key", &w.banks[0].1).await;
    b.click("form[action='/console/sign-in'] button").await;
    assert_eq!(b.path().await, "/console/requests");
    b.close().await;
}
