//! The portal crate's layering, checked on its source: every top-level module imports only the
//! layers below it, so no import cycle can come back; the domain and auth layers know no web
//! framework; the desktop proxy knows no SQL or Docker. See ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first; a module may use those of lower layers only.
const LAYERS: &[(&str, u8)] = &[
    ("i18n", 0),
    ("net", 0),
    ("config", 1),
    ("telemetry", 2),
    ("domain", 3),
    ("auth", 4),
    ("state", 5),
    ("web", 6),
];

/// Crates the web layer may use and the layers below it may not.
const WEB_FRAMEWORK: &[&str] = &["axum::", "askama::", "axum_", "#[derive(Template)]"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source of the top-level module `name` (its file or its folder), comments removed
/// (doc links name other layers without using them).
fn code_of(name: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let folder = src().join(name);
    if folder.is_dir() {
        rust_files(&folder, &mut files);
    } else {
        files.push(src().join(format!("{name}.rs")));
    }
    files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            (f, code)
        })
        .collect()
}

/// The top-level modules `code` names as `crate::X`.
fn uses(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .filter(|(i, _)| !code[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, _)| {
            code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

fn graph() -> BTreeMap<&'static str, BTreeSet<String>> {
    LAYERS
        .iter()
        .map(|(name, _)| {
            let mut all = BTreeSet::new();
            for (_, code) in code_of(name) {
                all.extend(uses(&code));
            }
            all.remove(*name);
            (*name, all)
        })
        .collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let mut found = BTreeSet::new();
    for entry in fs::read_dir(src()).expect("src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !["lib", "main", "healthcheck"].contains(&name.as_str()) {
            found.insert(name);
        }
    }
    let known: BTreeSet<String> = LAYERS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        found, known,
        "a new top-level module needs its place in LAYERS (and in ARCHITECTURE.md)"
    );
}

#[test]
fn modules_import_only_lower_layers() {
    let rank: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        for to in targets {
            // `crate::AppState` and friends: the root re-exports, which are the layers'
            // own items; name the layer instead.
            let Some(&to_rank) = rank.get(to.as_str()) else {
                wrong.push(format!("{from} uses crate::{to}: name the module that defines it"));
                continue;
            };
            if to_rank >= rank[from] {
                wrong.push(format!("{from} (layer {}) uses {to} (layer {to_rank})", rank[from]));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle() {
    // The checker itself: a made-up lower module naming a higher one is caught.
    assert!(uses("use crate::web::error::AppError;\nfoo(crate::state::X)").contains("web"));
    assert!(!uses("use iserv_crate::x;").contains("x"));
}

#[test]
fn domain_and_auth_know_no_web_framework() {
    for layer in ["domain", "auth", "config", "telemetry", "net", "i18n"] {
        for (file, code) in code_of(layer) {
            for word in WEB_FRAMEWORK {
                // Telemetry's request timing and the metrics listener are middleware and a
                // tiny server of their own; net's client address is an extractor.
                let exempt = matches!(layer, "telemetry" | "net") && word.starts_with("axum");
                assert!(exempt || !code.contains(word), "{} uses {word}", file.display());
            }
        }
    }
}

#[test]
fn the_desktop_proxy_knows_no_sql_or_docker() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../desktop-proxy/Cargo.toml");
    let text = fs::read_to_string(&manifest).expect("the proxy's manifest");
    let deps = text.split("[dependencies]").nth(1).unwrap_or_default();
    let deps = deps.split("[dev-dependencies]").next().unwrap_or_default();
    for forbidden in ["sqlx", "bollard", "portal-store", "desktop-runtime", "axum"] {
        assert!(!deps.contains(forbidden), "desktop-proxy depends on {forbidden}");
    }
}
