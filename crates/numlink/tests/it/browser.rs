//! The pages in a real browser: headless Chromium driven through WebDriver (Debian's `chromium` and
//! `chromium-driver`), against a real `numlink serve` on a fresh SQLite file. A machine without them
//! skips these tests and says so; with `NUMLINK_BROWSER_REQUIRED=1` (`.ci/run` sets it) a missing
//! browser fails them instead.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::serve;

/// A chromedriver and its browser session; both ended on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
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
    Some(Browser { driver, client: Some(client), _profile: profile })
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_checks_a_proof_in_a_phone_browser_with_the_keyboard_alone() {
    let Some(b) = browser("zh-CN", 390, 844).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let c = b.client();
    c.goto(&format!("{}/verify", server.base)).await.unwrap();
    // Chinese, as the browser asks.
    assert_eq!(text(&b, "h1").await, "核验号码持有证明");
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
    // Nothing was fetched from anywhere but numlink.
    let fetched = c.execute("return performance.getEntriesByType('resource').map(e => e.name)", vec![]).await.unwrap();
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(!fetched.is_empty(), "the stylesheet at least");
    assert!(fetched.iter().all(|u| u.starts_with(&server.base)), "{fetched:?}");
    b.close().await;
}
