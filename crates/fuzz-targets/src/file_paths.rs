//! Users' file paths (`portal_files`): the path a URL names, a new name a user types, and what
//! the file layer does with them in a tree whose owner has planted a link out of it.
//!
//! Input: a path (first line, any bytes), then a new name (second line).
//!
//! Invariants: a parsed path has only real names as components (never empty, `.`, `..`, or
//! holding `/` or NUL), prints back to itself, and is refused when any segment is `..`; a new
//! name has no control characters and fits a directory entry, and its numbered variants
//! ("name (2).ext") are new names too; whatever the path, reading through the tree never yields
//! the file behind the planted link, and writing never creates anything outside the tree.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use portal_files::{Limit, LimitKind, MAX_NAME_BYTES, Name, OnClash, RelPath, Tree};

const SECRET: &[u8] = b"outside the tree";

/// A tree with a link `out` to a folder beside it, made once per process.
struct Fixture {
    tree: Tree,
    outside: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("ird-fuzz-files-{}", std::process::id()));
        let (home, outside) = (base.join("home"), base.join("outside"));
        std::fs::create_dir_all(home.join("dir")).expect("fixture home");
        std::fs::create_dir_all(&outside).expect("fixture outside");
        std::fs::write(outside.join("secret"), SECRET).expect("fixture secret");
        std::fs::write(home.join("dir/file"), b"inside").expect("fixture file");
        let _ = std::os::unix::fs::symlink(&outside, home.join("out"));
        let _ = std::os::unix::fs::symlink(outside.join("secret"), home.join("dir/secret"));
        Fixture {
            tree: Tree::open(&home, None).expect("fixture tree"),
            outside,
        }
    })
}

pub fn run(data: &[u8]) {
    let lines = crate::lines(data, 2);
    let raw = String::from_utf8_lossy(lines.first().copied().unwrap_or_default());
    let typed = String::from_utf8_lossy(lines.get(1).copied().unwrap_or_default());

    if let Ok(path) = RelPath::parse(&raw) {
        check_path(&raw, &path);
        check_tree(&path);
    } else if let Ok(name) = Name::existing(&raw)
        && let Ok(path) = RelPath::from_names(vec![name])
    {
        check_tree(&path);
    }
    if let Ok(name) = Name::new(&typed) {
        check_new_name(name.as_str());
        for n in [2, 10, 999] {
            let numbered = name.numbered(n);
            assert!(Name::new(numbered.as_str()).is_ok(), "{numbered:?} from {name:?}");
        }
    }
}

fn check_path(raw: &str, path: &RelPath) {
    assert!(
        !raw.split('/').any(|s| s == ".." || s == "."),
        "{raw:?} parsed with a dot segment"
    );
    for n in path.names() {
        let s = n.as_str();
        assert!(
            !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']),
            "{s:?} in {raw:?}"
        );
        assert!(s.len() <= MAX_NAME_BYTES, "{s:?}");
    }
    let again = RelPath::parse(&path.to_string()).unwrap_or_else(|e| panic!("{path:?} does not parse back: {e}"));
    assert_eq!(&again, path);
}

fn check_new_name(name: &str) {
    assert!(!name.chars().any(char::is_control), "{name:?}");
    assert!(
        !name.is_empty() && name.len() <= MAX_NAME_BYTES && !name.contains('/'),
        "{name:?}"
    );
    assert!(name != "." && name != "..", "{name:?}");
}

fn check_tree(path: &RelPath) {
    let f = fixture();
    if let Ok((mut file, _)) = f.tree.open_read(path) {
        let mut content = Vec::new();
        let _ = std::io::Read::read_to_end(&mut file, &mut content);
        assert_ne!(content, SECRET, "{path:?} read the file behind the link");
    }
    // Anything under the planted link is the outside: never listed, never opened.
    if path.names().first().is_some_and(|n| n.as_str() == "out") {
        assert!(f.tree.list(path).is_err(), "{path:?} listed the folder behind the link");
        assert!(f.tree.open_read(path).is_err(), "{path:?} opened through the link");
    }
    let _ = f.tree.list(path);
    let limit = Limit {
        bytes: 16,
        kind: LimitKind::Upload,
    };
    let _ = f
        .tree
        .write(path, &mut Cursor::new(b"x".to_vec()), limit, OnClash::Number);
    let _ = f.tree.mkdir(path);
    let outside: Vec<_> = std::fs::read_dir(&f.outside).expect("outside").collect();
    assert_eq!(outside.len(), 1, "{path:?} created something outside the tree");
}
