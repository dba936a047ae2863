//! Unpacking a home volume's tar beneath a home: what a student may have put into her volume
//! (links out, names with `..`, a link standing where a folder is expected) never leads
//! outside, nothing existing is overwritten, and a second run finds everything in place.

use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::Path;

use portal_files::{Owner, UnpackOptions, UnpackReport, unpack_tar};

const OWNER: Owner = Owner { uid: 1000, gid: 1000 };

/// An archive as the engine sends a volume: every entry beneath `vol/`.
struct Archive(tar::Builder<Vec<u8>>);

impl Archive {
    fn new() -> Archive {
        let mut a = Archive(tar::Builder::new(Vec::new()));
        a.dir("");
        a
    }

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        h
    }

    fn dir(&mut self, path: &str) -> &mut Archive {
        let mut h = Self::header(tar::EntryType::Directory, 0o755);
        h.set_size(0);
        self.0
            .append_data(&mut h, format!("vol/{path}"), std::io::empty())
            .expect("dir entry");
        self
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Archive {
        let mut h = Self::header(tar::EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        self.0
            .append_data(&mut h, format!("vol/{path}"), data)
            .expect("file entry");
        self
    }

    fn link(&mut self, path: &str, to: &str) -> &mut Archive {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777);
        h.set_size(0);
        self.0
            .append_link(&mut h, format!("vol/{path}"), to)
            .expect("link entry");
        self
    }

    /// A file entry whose name the builder would refuse (`..`): written into the header raw.
    fn raw_file(&mut self, name: &[u8], data: &[u8]) -> &mut Archive {
        let mut h = Self::header(tar::EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        let gnu = h.as_gnu_mut().expect("gnu header");
        gnu.name = [0; 100];
        gnu.name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.0.append(&h, data).expect("raw entry");
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        builder.into_inner().expect("finish archive")
    }
}

fn unpack(target: &Path, archive: &[u8], dry_run: bool) -> UnpackReport {
    let opts = UnpackOptions {
        strip: 1,
        owner: OWNER,
        dry_run,
    };
    unpack_tar(target, archive, &opts).expect("unpack")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_volume_arrives_with_names_links_and_folders_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("homes/alice");
    let archive = Archive::new()
        .dir("Mathe")
        .dir("Mathe/Blatt 1")
        .file("Mathe/Blatt 1/Übung ä.txt", b"Aufgabe")
        .file("notes.txt", b"hello")
        .link("etc", "/etc")
        .bytes();

    let dry = unpack(&home, &archive, true);
    assert_eq!((dry.files, dry.dirs, dry.links), (2, 2, 1), "{dry:?}");
    assert!(!home.exists(), "a dry run writes nothing");

    let first = unpack(&home, &archive, false);
    assert_eq!(
        (first.files, first.bytes, first.dirs, first.links),
        (2, 12, 2, 1),
        "{first:?}"
    );
    assert!(first.conflicts.is_empty() && first.refused.is_empty(), "{first:?}");
    let file = home.join("Mathe/Blatt 1/Übung ä.txt");
    assert_eq!(std::fs::read(&file).expect("file"), b"Aufgabe");
    let meta = std::fs::metadata(&file).expect("meta");
    assert_eq!(meta.mtime(), 1_700_000_000, "the time is kept");
    assert_eq!(meta.mode() & 0o777, 0o644);
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    }
    assert_eq!(
        std::fs::read_link(home.join("etc")).expect("a link"),
        Path::new("/etc"),
        "recreated as a link"
    );

    let second = unpack(&home, &archive, false);
    assert!(!second.changed_anything(), "{second:?}");
    assert_eq!(second.unchanged, 5, "{second:?}");

    // A dry run over an existing home looks, and writes nothing either.
    let more = Archive::new()
        .dir("Mathe")
        .file("Mathe/neu.txt", b"x")
        .file("neu.txt", b"y")
        .bytes();
    let dry = unpack(&home, &more, true);
    assert_eq!((dry.files, dry.unchanged), (2, 1), "{dry:?}");
    assert!(!home.join("neu.txt").exists() && !home.join("Mathe/neu.txt").exists());
}

#[test]
fn existing_files_are_reported_as_conflicts_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(home.join("Bericht.txt"), "newer, made in the portal").expect("existing");
    std::fs::write(home.join("Ordner"), "a file where the volume has a folder").expect("existing");
    let archive = Archive::new()
        .file("Bericht.txt", b"older, from the volume")
        .dir("Ordner")
        .bytes();

    let report = unpack(&home, &archive, false);
    assert_eq!(report.conflicts, ["Bericht.txt", "Ordner"], "{report:?}");
    assert_eq!(report.files, 0);
    assert_eq!(
        std::fs::read_to_string(home.join("Bericht.txt")).expect("kept"),
        "newer, made in the portal"
    );
}

#[test]
fn dot_dot_names_and_links_on_the_way_never_lead_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("homes/alice");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let archive = Archive::new()
        // A link to a folder outside, then entries "inside" it.
        .link("out", outside.to_str().expect("utf-8"))
        .file("out/planted.txt", b"x")
        .raw_file(b"vol/../escaped.txt", b"x")
        .raw_file(b"vol/a/../../escaped2.txt", b"x")
        .bytes();

    let report = unpack(&home, &archive, false);
    assert_eq!(report.links, 1);
    assert_eq!(report.files, 0, "{report:?}");
    assert_eq!(report.refused.len(), 3, "{report:?}");
    assert!(
        report.refused[0].starts_with("out/planted.txt: a folder on the way is a link"),
        "{report:?}"
    );
    assert!(report.refused[1].contains("\"..\""), "{report:?}");
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "nothing written outside"
    );
    assert!(!dir.path().join("homes/escaped.txt").exists());
    assert!(!dir.path().join("escaped2.txt").exists());

    // A link the home already has, pointing out: the same.
    symlink(&outside, home.join("Mathe")).expect("link");
    let archive = Archive::new().dir("Mathe").file("Mathe/x.txt", b"x").bytes();
    let report = unpack(&home, &archive, false);
    assert_eq!(report.conflicts, ["Mathe"], "{report:?}");
    assert_eq!(report.files, 0, "{report:?}");
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        0,
        "nothing written outside"
    );
}

/// A file already in the home with the same size and the same modification time as the
/// archive's, but other bytes, is a conflict (kept), not "already there": size and time agree
/// by chance (another three-letter note written in the same second).
#[test]
fn the_same_size_and_time_with_other_bytes_is_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("homes/alice");
    std::fs::create_dir_all(&home).expect("home");
    let path = home.join("Notiz.txt");
    std::fs::write(&path, b"neu").expect("existing");
    let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(stamp))
        .expect("set the archive's time");
    let archive = Archive::new().file("Notiz.txt", b"alt").bytes();
    let report = unpack(&home, &archive, false);
    assert_eq!(report.conflicts, ["Notiz.txt"], "{report:?}");
    assert_eq!(std::fs::read(&path).expect("kept"), b"neu");

    // The very same bytes are what a second run finds: already there.
    let same = Archive::new().file("Notiz.txt", b"neu").bytes();
    let report = unpack(&home, &same, false);
    assert!(report.conflicts.is_empty() && report.unchanged >= 1, "{report:?}");
}
