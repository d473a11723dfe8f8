//! Repository rules, checked as ordinary tests: the architecture's promises stay true.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn dependencies(krate: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let section = text.split("[dependencies]").nth(1).unwrap_or("");
    let section = section.split("\n[").next().unwrap_or("");
    section
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect()
}

#[test]
fn domain_does_no_io_no_async_no_serde_no_sql() {
    // Architecture Invariant: domain depends on a date library and nothing else.
    assert_eq!(dependencies("domain"), vec!["jiff"]);
}

#[test]
fn the_index_is_pure() {
    // Architecture Invariant: the index is data structures over the domain's rules, and nothing else.
    assert_eq!(dependencies("index"), vec!["domain"]);
}

#[test]
fn only_store_knows_sql_and_only_api_serves_http() {
    for krate in ["domain", "api", "workers"] {
        let deps = dependencies(krate);
        assert!(!deps.iter().any(|d| d == "rusqlite" || d == "postgres"), "{krate} must not know SQL: {deps:?}");
    }
    // HTTP handlers live in api; workers may call out (webhooks), but serve nothing.
    for krate in ["domain", "store", "workers"] {
        let deps = dependencies(krate);
        assert!(!deps.iter().any(|d| d == "axum" || d == "tower-http"), "{krate} must not serve HTTP: {deps:?}");
    }
    for krate in ["domain", "store"] {
        let deps = dependencies(krate);
        assert!(!deps.iter().any(|d| d == "reqwest"), "{krate} must not call HTTP: {deps:?}");
    }
}

#[test]
fn every_module_says_what_it_owns() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let is_module = !f.to_string_lossy().contains("/tests/") || f.ends_with("main.rs");
        if is_module && !text.starts_with("//!") {
            panic!("{} does not start with a //! comment saying what it owns", f.display());
        }
        let ignore = concat!("#[", "ignore");
        assert!(!text.contains(ignore), "{} ignores a test", f.display());
    }
}

#[test]
fn architecture_md_names_only_paths_that_exist() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut named = 0;
    for (i, chunk) in text.split('`').enumerate() {
        let looks_like_path = i % 2 == 1
            && !chunk.contains(' ')
            && (chunk.starts_with("crates/") || chunk.starts_with("xtask/") || chunk.starts_with(".ci/"));
        if looks_like_path {
            named += 1;
            assert!(
                root().join(chunk.trim_end_matches('/')).exists(),
                "ARCHITECTURE.md names {chunk}, which does not exist"
            );
        }
    }
    assert!(named > 10, "ARCHITECTURE.md should map the code: only {named} paths named");
}
