//! Embeds the texts of every language folder (`locales/<code>/main.ftl`) into the binary, so
//! that adding a language is adding a folder: no Rust to change, no files to ship next to it.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() -> Result<(), Box<dyn Error>> {
    let locales = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("locales");
    // A directory makes cargo rerun this when anything beneath it changes, new folders included.
    println!("cargo:rerun-if-changed={}", locales.display());
    let mut found = Vec::new();
    for entry in fs::read_dir(&locales)? {
        let dir = entry?.path();
        let file = dir.join("main.ftl");
        let Some(code) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file.is_file() {
            found.push((code.to_owned(), file));
        }
    }
    // German first: it is the default and fills in what other languages lack.
    found.sort_by_key(|(code, _)| (code != "de", code.clone()));
    if found.first().is_none_or(|(code, _)| code != "de") {
        return Err(format!(
            "{} has no de/main.ftl (German is the default language)",
            locales.display()
        )
        .into());
    }
    let mut out = String::from("/// Every `locales/<code>/main.ftl` as (code, Fluent source), German first.\n");
    out.push_str("const LOCALES: &[(&str, &str)] = &[\n");
    for (code, file) in &found {
        let path = file
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", file.display()))?;
        writeln!(out, "    ({code:?}, include_str!({path:?})),")?;
    }
    out.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR")?).join("locales.rs"), out)?;
    Ok(())
}
