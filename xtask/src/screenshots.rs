//! `cargo xtask screenshots`: pictures of each page in both languages at a phone's width, taken by
//! headless Chromium from a release `numlink serve` on a fresh database, written to
//! `docs/screenshots/` for the README.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::bench::{Killed, TempDir, free_port, release, wait_for_port};

/// (file name, path): the pages, as a person meets them.
const PAGES: [(&str, &str); 2] = [("verify", "/verify"), ("verify-invalid", "/verify?token=not-a-proof")];

const LANGS: [&str; 2] = ["zh-CN", "en"];

/// A phone's viewport (CSS pixels).
const PHONE: (u32, u32) = (390, 844);

pub fn screenshots(root: &Path) -> Result<()> {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        bail!("no /usr/bin/chromium: apt-get install chromium fonts-noto-cjk");
    }
    crate::run(Command::new("cargo").current_dir(root).args(["build", "--release", "-p", "numlink"]))?;
    let guard = TempDir(std::env::temp_dir().join(format!("numlink-screenshots-{}", std::process::id())));
    std::fs::create_dir_all(&guard.0)?;
    let port = free_port()?;
    let _server = Killed(
        Command::new(release(root, "numlink"))
            .current_dir(&guard.0)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("NUMLINK_LOG", "warn")
            .spawn()
            .context("start numlink serve")?,
    );
    wait_for_port(port)?;
    let out = root.join("docs/screenshots");
    std::fs::create_dir_all(&out)?;
    for lang in LANGS {
        for (name, path) in PAGES {
            let file = out.join(format!("{name}-{lang}.png"));
            let profile = guard.0.join(format!("profile-{name}-{lang}"));
            let status = Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--hide-scrollbars",
                    &format!("--user-data-dir={}", profile.display()),
                    &format!("--accept-lang={lang}"),
                    &format!("--window-size={},{}", PHONE.0, PHONE.1),
                    &format!("--screenshot={}", file.display()),
                    &format!("http://127.0.0.1:{port}{path}"),
                ])
                .stderr(std::process::Stdio::null())
                .status()
                .context("run chromium")?;
            if !status.success() || !file.exists() {
                bail!("chromium did not take {}", file.display());
            }
            eprintln!("wrote {}", file.strip_prefix(root).unwrap_or(&file).display());
        }
    }
    Ok(())
}
