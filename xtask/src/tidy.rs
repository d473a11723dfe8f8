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

/// Every tracked file, as the repository holds it (`git ls-files`).
fn tracked_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .current_dir(root())
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs (the tidy tests read the tracked files)");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| root().join(String::from_utf8_lossy(p).as_ref()))
        .collect()
}

fn all_rust_sources() -> String {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n")
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `word` appears in `code` as a whole identifier right after one of `before` (e.g. "fn ").
fn defined(code: &str, before: &[&str], word: &str) -> bool {
    before.iter().any(|b| {
        let pat = format!("{b}{word}");
        code.match_indices(&pat).any(|(i, _)| {
            let after = code[i + pat.len()..].chars().next();
            let prev = code[..i].chars().next_back();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && !prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

const ITEM: &[&str] = &["fn ", "struct ", "enum ", "trait ", "type ", "const ", "static ", "mod "];

/// Whether a name ARCHITECTURE.md gives as `A::b` or `f(…)` exists in the code: each path segment is an
/// item, a crate, or an enum variant, and a `Type::method` is a function (or a field) of that type.
fn names_code(code: &str, crates: &[String], name: &str) -> bool {
    let segments: Vec<&str> = name.split("::").collect();
    let known = |seg: &str| {
        crates.iter().any(|c| c == seg)
            || defined(code, ITEM, seg)
            // an enum variant: `    Name,` / `    Name {` / `    Name(`
            || [",", " {", "(", " =>"].iter().any(|end| code.contains(&format!("    {seg}{end}")))
    };
    match segments.as_slice() {
        [path @ .., ty, method] if ty.starts_with(char::is_uppercase) && method.starts_with(char::is_lowercase) => {
            // `impl Ty {` or `impl Trait for Ty {` and a `fn method` (or a field) somewhere in the code.
            path.iter().chain([ty]).all(|s| known(s))
                && (code.contains(&format!("impl {ty} "))
                    || code.contains(&format!("for {ty} "))
                    || code.contains(&format!("impl<'a> {ty}")))
                && (defined(code, &["fn "], method)
                    || [" ", "pub ", "pub(crate) "].iter().any(|v| code.contains(&format!("{v}{method}: "))))
        }
        _ => segments.iter().all(|s| known(s)),
    }
}

#[test]
fn architecture_md_names_only_code_that_exists() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let code = all_rust_sources();
    let mut crates: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    crates.push("xtask".into());
    let (mut named, mut missing) = (0, Vec::new());
    for (i, chunk) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        // `Type::method`, `module::function`, `function(args)`, `Type::method(args)`.
        let (name, call) = match chunk.split_once('(') {
            Some((n, _)) => (n, true),
            None => (chunk, false),
        };
        let path = name.contains("::") && name.split("::").all(is_ident);
        let function = call && is_ident(name) && name.starts_with(char::is_lowercase);
        if path || function {
            named += 1;
            if !names_code(&code, &crates, name) {
                missing.push(chunk.to_string());
            }
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md names code that does not exist: {missing:?}");
    assert!(named > 30, "ARCHITECTURE.md should name the code it maps: only {named} names");
}

/// A database or a key made by running numlink (a test, a walkthrough) must never be committed: a
/// tracked hash key would be a public one.
#[test]
fn no_database_or_key_file_is_tracked() {
    let made: Vec<PathBuf> = tracked_files()
        .into_iter()
        .filter(|f| {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("numlink.db") || name.ends_with(".key") || name.ends_with(".db")
        })
        .collect();
    assert!(made.is_empty(), "files numlink makes are tracked: {made:?}");
}

#[test]
fn no_tracked_file_refers_outside_the_repository() {
    let root = root();
    for f in tracked_files() {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        // Written in two parts, so that this file does not name them itself.
        for word in [concat!("/wo", "rk/"), concat!("../sh", "ared")] {
            assert!(!text.contains(word), "{rel} refers to {word}, outside the repository");
        }
        // Every relative path climbing with `../` lands inside the repository.
        for (i, _) in text.match_indices("../") {
            if i > 0 && text[..i].ends_with("../") {
                continue; // counted from the first `../` of a run
            }
            let tail: String =
                text[i..].chars().take_while(|c| !c.is_whitespace() && !"\"'`()<>[],;".contains(*c)).collect();
            let mut at = f.parent().unwrap().to_path_buf();
            for part in tail.split('/') {
                match part {
                    ".." => {
                        at.pop();
                    }
                    "" | "." => {}
                    p => at.push(p),
                }
            }
            assert!(at.starts_with(&root), "{rel} refers to {tail}, outside the repository");
        }
    }
}

/// A crate's modules, each with the modules of the same crate it names (`crate::a::b` in a `use` or
/// a path, `super::`), its `#[cfg(test)] mod tests` left out.
fn module_graph(krate: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let src = root().join("crates").join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |f: &Path| -> Vec<String> {
        let rel = f.strip_prefix(&src).unwrap().with_extension("");
        rel.iter()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !["lib", "main", "mod"].contains(&p.as_str()))
            .collect()
    };
    let modules: Vec<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    files
        .iter()
        .map(|f| {
            let me = module_of(f);
            let mut text = std::fs::read_to_string(f).unwrap();
            if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
                text.truncate(i);
            }
            let mut deps: Vec<Vec<String>> = Vec::new();
            for (i, _) in text.match_indices("crate::") {
                let path: Vec<String> = text[i + 7..]
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .take_while(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
                    .map(str::to_string)
                    .collect();
                // The longest prefix that is a module.
                if let Some(m) = (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)) {
                    deps.push(m);
                }
            }
            if text.contains("super::") && !me.is_empty() {
                deps.push(me[..me.len() - 1].to_vec());
            }
            deps.sort();
            deps.dedup();
            (me, deps)
        })
        .collect()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    // A module and its own submodules are one unit (a child naming its parent's types is how Rust
    // nests); between any two others, dependencies go one way.
    let nested = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut circles = Vec::new();
    for krate in ["domain", "index", "store", "workers", "api", "numlink"] {
        let graph = module_graph(krate);
        for (a, deps) in &graph {
            for b in deps.iter().filter(|b| !nested(a, b)) {
                let back = graph.iter().find(|(m, _)| m == b).is_some_and(|(_, d)| d.contains(a));
                if back && a < b {
                    circles.push(format!("{krate}: {} <-> {}", a.join("::"), b.join("::")));
                }
            }
        }
    }
    assert!(circles.is_empty(), "modules that import each other: {circles:?}");
}
