//! `cargo xtask screenshots`: pictures of each page in both languages at a phone's width, taken by
//! the browser tests (headless Chromium, a real `numlink serve` on a fresh database) along the path a
//! person takes, written to `docs/screenshots/` for the README.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// `cargo xtask screenshots`: the browser tests, run with `NUMLINK_SCREENSHOTS` set, save a picture of
/// every page they reach (each in both languages, at a phone's width) as they check it.
pub fn screenshots(root: &Path) -> Result<()> {
    if !Path::new("/usr/bin/chromium").exists() {
        bail!("no /usr/bin/chromium: apt-get install chromium chromium-driver fonts-noto-cjk");
    }
    let out = root.join("docs/screenshots");
    // The folder holds the pages as they are now, and nothing older.
    if out.exists() {
        for entry in std::fs::read_dir(&out)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    crate::run(
        Command::new("cargo")
            .current_dir(root)
            .args(["test", "-p", "numlink", "--test", "it", "browser::", "--", "--test-threads=1"])
            .env("NUMLINK_SCREENSHOTS", &out)
            .env("NUMLINK_BROWSER_REQUIRED", "1"),
    )?;
    let mut taken: Vec<String> =
        std::fs::read_dir(&out)?.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect();
    taken.sort();
    eprintln!("wrote {} pictures to docs/screenshots: {}", taken.len(), taken.join(", "));
    Ok(())
}
