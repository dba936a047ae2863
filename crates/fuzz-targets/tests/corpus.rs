//! Every committed input runs through its target on every test run: the seed corpora
//! (`fuzz/corpus/<target>/`) and the inputs that once broke a target (`fuzz/regressions/<target>/`,
//! each fixed since). A target without seeds fails, so a new target cannot go untested.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// `.gitkeep` and the like keep an empty folder in git; they are no inputs.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && !is_hidden(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs each file through `target`, naming the file when it panics.
fn replay(kind: &str, name: &str, target: fn(&[u8])) {
    let dir = fuzz_dir().join(kind).join(name);
    let files = files(&dir);
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            panic!("{name}: {} breaks the target", file.display());
        }
    }
}

#[test]
fn every_target_has_a_binary_and_seeds() {
    for (name, _) in fuzz_targets::TARGETS {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "{} is missing", bin.display());
        assert!(
            files(&fuzz_dir().join("corpus").join(name)).len() >= 3,
            "{name}: commit a few meaningful seeds to fuzz/corpus/{name}/"
        );
    }
    let bins = files(&fuzz_dir().join("fuzz_targets"));
    assert_eq!(
        bins.len(),
        fuzz_targets::TARGETS.len(),
        "a binary without an entry in TARGETS: {bins:?}"
    );
}

/// One test per target and folder, so a failure names its target.
macro_rules! replays {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn seeds_keep_every_invariant() {
                super::replay("corpus", stringify!($name), fuzz_targets::$name::run);
            }

            #[test]
            fn former_crashes_stay_fixed() {
                super::replay("regressions", stringify!($name), fuzz_targets::$name::run);
            }
        }
    )*};
}

replays!(
    claims,
    config,
    desktop_host,
    desktop_path,
    file_paths,
    forwarded_for,
    request_head,
    rfb_server_messages,
);

#[test]
fn the_replays_cover_every_target() {
    let source = include_str!("corpus.rs");
    // The invocation, on one line or (as rustfmt lays out a long one) over several.
    let call = source
        .split("\nreplays!(")
        .nth(1)
        .and_then(|rest| rest.split(");").next())
        .unwrap_or_default();
    let replayed: Vec<&str> = call.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    for (name, _) in fuzz_targets::TARGETS {
        assert!(replayed.contains(name), "{name} is not replayed");
    }
}
