//! The files layer against trees a student prepared from inside her desktop: links out of the
//! tree, links swapped in while the portal works, pipes, odd names, uploads that break off.

use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use portal_files::{EntryKind, FilesError, Limit, LimitKind, Name, OnClash, Owner, RelPath, Trash, Tree};

fn p(s: &str) -> RelPath {
    RelPath::parse(s).expect("test path")
}

fn big() -> Limit {
    Limit {
        bytes: 1 << 30,
        kind: LimitKind::Upload,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    home: Tree,
    home_path: std::path::PathBuf,
    /// Another user's home and a system file: what a link tries to reach.
    other: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let home_path = dir.path().join("homes/alice");
    let other = dir.path().join("homes/bob");
    std::fs::create_dir_all(&other).expect("bob");
    std::fs::write(other.join("secret.txt"), "bob's").expect("bob's file");
    let home = Tree::open(&home_path, None).expect("open home");
    Fixture {
        _dir: dir,
        home,
        home_path,
        other,
    }
}

fn upload(tree: &Tree, path: &str, data: &[u8], on_clash: OnClash) -> Result<(Name, u64), FilesError> {
    tree.write(&p(path), &mut io::Cursor::new(data.to_vec()), big(), on_clash)
}

#[test]
fn links_out_of_the_tree_are_listed_as_links_and_never_followed() {
    let f = fixture();
    symlink("/etc", f.home_path.join("etc")).expect("link /etc");
    symlink(&f.other, f.home_path.join("bob")).expect("link bob");
    symlink(f.other.join("secret.txt"), f.home_path.join("secret.txt")).expect("link file");

    let listed = f.home.list(&RelPath::root()).expect("list");
    assert!(listed.iter().all(|e| e.kind == EntryKind::Link), "{listed:?}");
    assert_eq!(listed.len(), 3);

    assert!(matches!(f.home.open_read(&p("secret.txt")), Err(FilesError::Link)));
    assert!(matches!(f.home.open_read(&p("etc/passwd")), Err(FilesError::Link)));
    assert!(matches!(f.home.list(&p("bob")), Err(FilesError::Link)));
    assert!(matches!(
        upload(&f.home, "bob/new.txt", b"x", OnClash::Fail),
        Err(FilesError::Link)
    ));
    assert!(matches!(f.home.mkdir(&p("bob/dir")), Err(FilesError::Link)));
    assert!(matches!(
        f.home.rename(&p("bob/secret.txt"), &p("mine.txt"), OnClash::Fail),
        Err(FilesError::Link)
    ));
    // Replacing a link replaces the link itself, not what it points to.
    upload(&f.home, "secret.txt", b"mine", OnClash::Replace).expect("replace the link");
    assert_eq!(
        std::fs::read_to_string(f.other.join("secret.txt")).expect("bob's file"),
        "bob's"
    );
    // Removing a link to a folder removes the link only.
    f.home.remove(&p("bob")).expect("remove link");
    assert!(f.other.join("secret.txt").exists());
    assert_eq!(
        std::fs::read_dir(&f.other).expect("bob").count(),
        1,
        "nothing was written to bob's home"
    );
}

#[test]
fn a_folder_swapped_for_a_link_during_writes_never_leads_outside() {
    let f = fixture();
    std::fs::create_dir(f.home_path.join("d")).expect("d");
    let stop = Arc::new(AtomicBool::new(false));
    // The student's desktop: swaps `d` between a real folder and a link to bob's home, as fast
    // as it can, while the portal writes into `d`.
    let swapper = {
        let (home, other, stop) = (f.home_path.clone(), f.other.clone(), stop.clone());
        std::thread::spawn(move || {
            let (d, real, link) = (home.join("d"), home.join("d.real"), home.join("d.link"));
            let _ = symlink(&other, &link);
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::rename(&d, &real);
                let _ = std::fs::rename(&link, &d);
                let _ = std::fs::rename(&d, &link);
                let _ = std::fs::rename(&real, &d);
            }
        })
    };
    let mut written = 0;
    for i in 0..2000 {
        if upload(&f.home, &format!("d/f{i}"), b"portal", OnClash::Fail).is_ok() {
            written += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    let in_bob: Vec<_> = std::fs::read_dir(&f.other)
        .expect("bob")
        .map(|e| e.map(|e| e.file_name()))
        .collect();
    assert_eq!(in_bob.len(), 1, "only bob's own file, got {in_bob:?}");
    assert!(written > 0, "some writes went into the real folder");
}

#[test]
fn pipes_and_devices_are_refused_without_blocking() {
    let f = fixture();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        f.home_path.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let listed = f.home.list(&RelPath::root()).expect("list");
    assert_eq!(listed[0].kind, EntryKind::Other);
    assert!(matches!(f.home.open_read(&p("fifo")), Err(FilesError::NotAFile)));
}

#[test]
fn odd_names_are_listed_and_addressable_and_new_names_stay_as_typed() {
    let f = fixture();
    std::fs::write(f.home_path.join("line\nbreak.txt"), "x").expect("desktop-made name");
    upload(&f.home, "Übung 1.pdf", b"%PDF", OnClash::Fail).expect("umlaut");
    let names: Vec<_> = f
        .home
        .list(&RelPath::root())
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["line\nbreak.txt", "Übung 1.pdf"]);
    let (_, entry) = f
        .home
        .open_read(&RelPath::from_names(vec![Name::existing("line\nbreak.txt").expect("name")]).expect("path"))
        .expect("open");
    assert_eq!(entry.size, 1);
    assert!(matches!(
        upload(&f.home, "new\nline", b"x", OnClash::Fail),
        Err(FilesError::BadName(_))
    ));
    assert!(
        RelPath::parse(&"a".repeat(256)).is_err(),
        "256 bytes are too long for a name"
    );
    assert!(f.home_path.join("Übung 1.pdf").exists(), "stored under the exact name");
}

#[test]
fn clashes_never_overwrite_silently() {
    let f = fixture();
    upload(&f.home, "Übung 1.pdf", b"one", OnClash::Fail).expect("first");
    assert!(matches!(
        upload(&f.home, "Übung 1.pdf", b"two", OnClash::Fail),
        Err(FilesError::Exists)
    ));
    let (name, _) = upload(&f.home, "Übung 1.pdf", b"two", OnClash::Number).expect("numbered");
    assert_eq!(name.as_str(), "Übung 1 (2).pdf");
    upload(&f.home, "Übung 1.pdf", b"three", OnClash::Replace).expect("replace");
    assert_eq!(std::fs::read(f.home_path.join("Übung 1.pdf")).expect("read"), b"three");
    f.home.mkdir(&p("folder")).expect("mkdir");
    assert!(
        matches!(
            upload(&f.home, "folder", b"x", OnClash::Replace),
            Err(FilesError::Exists)
        ),
        "a folder is never replaced"
    );
    assert!(matches!(f.home.mkdir(&p("folder")), Err(FilesError::Exists)));
    assert!(matches!(
        f.home
            .rename(&p("Übung 1 (2).pdf"), &p("Übung 1.pdf"), OnClash::Replace),
        Err(FilesError::Exists)
    ));
}

struct Breaks {
    sent: usize,
}

impl Read for Breaks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.sent >= 200_000 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away"));
        }
        let n = buf.len().min(10_000);
        buf[..n].fill(b'x');
        self.sent += n;
        Ok(n)
    }
}

#[test]
fn uploads_that_break_off_or_hit_a_limit_leave_nothing_behind() {
    let f = fixture();
    let broken = f
        .home
        .write(&p("big.bin"), &mut Breaks { sent: 0 }, big(), OnClash::Fail);
    assert!(matches!(broken, Err(FilesError::Io(_))), "{broken:?}");
    let quota = Limit {
        bytes: 1000,
        kind: LimitKind::Quota,
    };
    let over = f.home.write(
        &p("big.bin"),
        &mut io::Cursor::new(vec![0u8; 1001]),
        quota,
        OnClash::Fail,
    );
    assert!(
        matches!(over, Err(FilesError::TooLarge { limit }) if limit == quota),
        "{over:?}"
    );
    f.home
        .write(
            &p("ok.bin"),
            &mut io::Cursor::new(vec![0u8; 1000]),
            quota,
            OnClash::Fail,
        )
        .expect("at the limit");
    let on_disk: Vec<_> = std::fs::read_dir(&f.home_path)
        .expect("home")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(on_disk, ["ok.bin"], "no temporary or partial file is left");
}

#[test]
fn folders_cannot_move_into_themselves_and_copies_skip_links() {
    let f = fixture();
    f.home.mkdir(&p("a")).expect("a");
    f.home.mkdir(&p("a/b")).expect("b");
    upload(&f.home, "a/b/f.txt", b"12345", OnClash::Fail).expect("f");
    symlink(&f.other, f.home_path.join("a/b/bob")).expect("link");
    assert!(matches!(
        f.home.rename(&p("a"), &p("a/b/a"), OnClash::Fail),
        Err(FilesError::IntoItself)
    ));
    let (name, bytes) = f.home.copy(&p("a"), &p("a"), big(), OnClash::Number).expect("copy");
    assert_eq!((name.as_str(), bytes), ("a (2)", 5));
    let copied: Vec<_> = f
        .home
        .list(&p("a (2)/b"))
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(copied, ["f.txt"], "the link was not copied, nor what it points to");
    let small = Limit {
        bytes: 4,
        kind: LimitKind::Quota,
    };
    assert!(matches!(
        f.home.copy(&p("a"), &p("c"), small, OnClash::Fail),
        Err(FilesError::TooLarge { .. })
    ));
    assert_eq!(
        f.home.usage().expect("usage"),
        5 + 5,
        "links and their targets are not counted"
    );
}

#[test]
fn trash_keeps_restores_and_purges() {
    let f = fixture();
    let trash = Trash::new(Tree::open(&f.home_path.with_file_name("alice.trash"), None).expect("trash"));
    f.home.mkdir(&p("Mathe")).expect("mkdir");
    upload(&f.home, "Mathe/Übung 1.pdf", b"one", OnClash::Fail).expect("upload");
    let item = trash.put(&f.home, &p("Mathe/Übung 1.pdf"), 1_000).expect("delete");
    assert!(f.home.list(&p("Mathe")).expect("list").is_empty());
    assert_eq!(trash.list().expect("trash").len(), 1);
    // The folder went too, and a new file took the name meanwhile.
    f.home.remove(&p("Mathe")).expect("remove folder");
    f.home.mkdir(&p("Mathe")).expect("again");
    upload(&f.home, "Mathe/Übung 1.pdf", b"new", OnClash::Fail).expect("new one");
    let back = trash.restore(&item.id, &f.home).expect("restore");
    assert_eq!(back.to_string(), "Mathe/Übung 1 (2).pdf");
    assert_eq!(
        std::fs::read(f.home_path.join("Mathe/Übung 1 (2).pdf")).expect("restored"),
        b"one"
    );
    assert!(trash.list().expect("trash").is_empty());
    assert!(matches!(
        trash.restore("../../etc/passwd", &f.home),
        Err(FilesError::NotFound)
    ));

    trash.put(&f.home, &p("Mathe"), 1_000).expect("old");
    upload(&f.home, "x", b"x", OnClash::Fail).expect("x");
    trash.put(&f.home, &p("x"), 5_000).expect("new");
    assert_eq!(trash.purge(2_000).expect("purge"), 1);
    assert_eq!(
        trash
            .list()
            .expect("trash")
            .iter()
            .map(|i| i.original.as_str())
            .collect::<Vec<_>>(),
        ["x"]
    );
}

#[test]
fn what_the_portal_creates_belongs_to_the_desktop_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: giving files away needs CAP_CHOWN; skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = Owner { uid: 1000, gid: 1000 };
    let home = Tree::open(&dir.path().join("home"), Some(owner)).expect("open");
    home.mkdir(&p("d")).expect("mkdir");
    home.write(&p("d/f"), &mut io::Cursor::new(b"x".to_vec()), big(), OnClash::Fail)
        .expect("write");
    for path in ["home", "home/d", "home/d/f"] {
        let meta = std::fs::metadata(Path::new(dir.path()).join(path)).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "{path}");
    }
}

/// A second file system for the move below: `/dev/shm` (a tmpfs on Linux) when the temporary
/// folder is on another one. `None` (and a message) where both are one file system; under
/// `CI=true` that fails, as the test would prove nothing.
fn other_file_system(than: &Path) -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if shm.is_dir() && dev(shm).is_some() && dev(shm) != dev(than) {
        return Some(tempfile::tempdir_in(shm).expect("tempdir in /dev/shm"));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: /dev/shm must be a file system of its own for the cross-device move test"
    );
    eprintln!("skipped: /dev/shm is no file system of its own here");
    None
}

#[test]
fn moves_between_file_systems_copy_and_then_remove_and_never_leave_half() {
    let f = fixture();
    let Some(shm) = other_file_system(&f.home_path) else {
        return;
    };
    let shared = Tree::open(&shm.path().join("shared"), None).expect("open shared");
    f.home.mkdir(&p("Übung")).expect("mkdir");
    upload(&f.home, "Übung/a.txt", b"12345", OnClash::Fail).expect("a");
    upload(&f.home, "Übung/b.txt", b"678", OnClash::Fail).expect("b");
    symlink(&f.other, f.home_path.join("Übung/bob")).expect("link");
    // A plain rename cannot cross file systems: this is the case the fallback is for.
    assert!(matches!(
        f.home.move_to(&p("Übung"), &shared, &p("Übung"), OnClash::Fail),
        Err(FilesError::CrossDevice)
    ));

    // Too large for the target's limit: refused, the copy removed, the original untouched.
    let small = Limit {
        bytes: 6,
        kind: LimitKind::Quota,
    };
    assert!(matches!(
        f.home
            .move_between(&p("Übung"), &shared, &p("Übung"), small, OnClash::Number),
        Err(FilesError::TooLarge { .. })
    ));
    assert!(shared.list(&RelPath::root()).expect("list").is_empty(), "no half copy");
    assert_eq!(
        f.home.list(&p("Übung")).expect("list").len(),
        3,
        "the original is whole"
    );

    // Within the limit: the folder arrives (links skipped, as in a copy) and leaves the home;
    // a name taken there gets a number.
    shared.mkdir(&p("Übung")).expect("taken");
    let name = f
        .home
        .move_between(&p("Übung"), &shared, &p("Übung"), big(), OnClash::Number)
        .expect("move");
    assert_eq!(name.as_str(), "Übung (2)");
    let moved: Vec<_> = shared
        .list(&p("Übung (2)"))
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(moved, ["a.txt", "b.txt"]);
    assert!(matches!(f.home.stat(&p("Übung")), Err(FilesError::NotFound)));
    assert_eq!(
        std::fs::read_to_string(f.other.join("secret.txt")).expect("bob"),
        "bob's"
    );

    // A single file too.
    upload(&f.home, "c.txt", b"c", OnClash::Fail).expect("c");
    let name = f
        .home
        .move_between(&p("c.txt"), &shared, &p("c.txt"), big(), OnClash::Fail)
        .expect("move file");
    assert_eq!(name.as_str(), "c.txt");
    assert!(matches!(f.home.stat(&p("c.txt")), Err(FilesError::NotFound)));
}
