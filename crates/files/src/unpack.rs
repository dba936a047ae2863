//! Unpacking a tar stream beneath a directory (an older version's Docker home volume moving
//! into the files root): whatever the archive says, nothing outside the directory is read or
//! written. Names with `..` are refused, every folder on the way is opened with `O_NOFOLLOW`
//! relative to the one before it, links in the archive are recreated as links and never
//! followed, and nothing that exists is overwritten: a different file of the same name is
//! reported as a conflict instead.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::tree::{FilesError, Owner, Tree};

/// Entries listed by name in a report at most; beyond, only counted.
const MAX_LISTED: usize = 1000;

/// How to unpack.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Leading path components to drop (Docker names entries `<volume>/…`).
    pub strip: usize,
    /// Owner of the folders created on the way, and of entries the archive says belong to
    /// root (nothing in a user's home is meant to be root's).
    pub owner: Owner,
    /// Only count what would be copied and what conflicts; write nothing.
    pub dry_run: bool,
}

/// What an unpack did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackReport {
    /// Regular files written, and their bytes.
    pub files: u64,
    pub bytes: u64,
    pub dirs: u64,
    /// Symbolic and hard links made.
    pub links: u64,
    /// Entries that were there already, the same (a second run finds only these).
    pub unchanged: u64,
    /// Paths where something different is in the way; left as they are.
    pub conflicts: Vec<String>,
    /// Paths not unpacked, with the reason (`..`, a link on the way, a device, …).
    pub refused: Vec<String>,
    /// Conflicts and refusals beyond the first thousand of each, only counted.
    pub more_unlisted: u64,
}

impl UnpackReport {
    /// Whether this run copied (or would copy) anything at all.
    pub fn changed_anything(&self) -> bool {
        self.files + self.dirs + self.links > 0
    }

    fn conflict(&mut self, path: String) {
        push_bounded(&mut self.conflicts, &mut self.more_unlisted, path);
    }

    fn refuse(&mut self, path: String, why: &str) {
        push_bounded(&mut self.refused, &mut self.more_unlisted, format!("{path}: {why}"));
    }
}

fn push_bounded(list: &mut Vec<String>, more: &mut u64, item: String) {
    if list.len() < MAX_LISTED {
        list.push(item);
    } else {
        *more += 1;
    }
}

/// Unpacks the tar stream `src` beneath `target` (created, owned by `opts.owner`, if missing).
/// Keeps modes (without set-id bits), modification times and owners where this process may
/// give files away.
pub fn unpack_tar(target: &Path, src: impl Read, opts: &UnpackOptions) -> Result<UnpackReport, FilesError> {
    let root: Option<OwnedFd> = if opts.dry_run {
        match open_dir(rustix::fs::CWD, target.as_os_str()) {
            Ok(fd) => Some(fd),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        Tree::open(target, Some(opts.owner))?;
        Some(open_dir(rustix::fs::CWD, target.as_os_str())?)
    };
    let mut report = UnpackReport::default();
    let mut archive = tar::Archive::new(src);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let all: Vec<&[u8]> = raw
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        if all.contains(&&b".."[..]) {
            report.refuse(shown, "names with \"..\" are refused");
            continue;
        }
        // The volume's own top folder: the target stands for it.
        if all.len() <= opts.strip {
            continue;
        }
        let comps = &all[opts.strip..];
        let shown = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
        let (name, parents) = match comps.split_last() {
            Some((name, parents)) => (OsStr::from_bytes(name), parents),
            None => continue,
        };
        let dir = match &root {
            Some(root) => match walk(root, parents, !opts.dry_run, opts.owner) {
                Ok(dir) => dir,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    report.refuse(shown, "a folder on the way is a link or a file");
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        let owner = owner_of(header.uid().ok(), header.gid().ok(), opts.owner);
        let mtime = header.mtime().unwrap_or(0);
        let existing = dir
            .as_ref()
            .and_then(|d| rustix::fs::statat(d, name, AtFlags::SYMLINK_NOFOLLOW).ok());
        // Where to write: nowhere on a dry run, which only looks.
        let write_to = dir.as_ref().filter(|_| !opts.dry_run);
        if kind.is_dir() {
            match existing {
                Some(st) if is_type(&st, rustix::fs::FileType::Directory) => report.unchanged += 1,
                Some(_) => report.conflict(shown),
                None => {
                    if let Some(dir) = write_to {
                        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode | 0o700))?;
                        let made = open_dir(dir, name)?;
                        give(&made, owner, opts.owner)?;
                    }
                    report.dirs += 1;
                }
            }
        } else if kind.is_file() {
            let size = entry.size();
            match existing {
                // The same only with the same bytes: a size and a time can agree by chance
                // (another file of that length written in the same second).
                Some(st)
                    if is_type(&st, rustix::fs::FileType::RegularFile)
                        && st.st_size as u64 == size
                        && st.st_mtime as u64 == mtime
                        && dir.as_ref().is_some_and(|d| same_content(d, name, &mut entry)) =>
                {
                    report.unchanged += 1
                }
                Some(_) => report.conflict(shown),
                None => {
                    if let Some(dir) = write_to {
                        let fd = rustix::fs::openat(
                            dir,
                            name,
                            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )?;
                        let mut file = File::from(fd);
                        io::copy(&mut entry, &mut file)?;
                        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
                        file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))?;
                        give(&file, owner, opts.owner)?;
                    }
                    report.files += 1;
                    report.bytes += size;
                }
            }
        } else if kind.is_symlink() {
            let Some(to) = entry.link_name_bytes().map(|l| l.into_owned()) else {
                report.refuse(shown, "a link without a target");
                continue;
            };
            match existing {
                Some(st) if is_type(&st, rustix::fs::FileType::Symlink) => {
                    let same = dir
                        .as_ref()
                        .and_then(|d| rustix::fs::readlinkat(d, name, Vec::new()).ok())
                        .is_some_and(|t| t.as_bytes() == to.as_slice());
                    if same {
                        report.unchanged += 1;
                    } else {
                        report.conflict(shown);
                    }
                }
                Some(_) => report.conflict(shown),
                None => {
                    if let Some(dir) = write_to {
                        // Made, never followed: where it points is the desktop's business.
                        rustix::fs::symlinkat(OsStr::from_bytes(&to), dir, name)?;
                        let (uid, gid) = ids(owner);
                        if rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW).is_err() {
                            let (uid, gid) = ids(opts.owner);
                            let _ = rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW);
                        }
                    }
                    report.links += 1;
                }
            }
        } else if kind.is_hard_link() {
            match existing {
                Some(_) => report.unchanged += 1,
                None => {
                    let made = match (&root, write_to, entry.link_name_bytes()) {
                        (Some(root), Some(dir), Some(to)) => hard_link(root, &to, opts.strip, dir, name),
                        _ => Ok(()),
                    };
                    match made {
                        Ok(()) => report.links += 1,
                        Err(_) => report.refuse(shown, "a hard link to something not in the archive"),
                    }
                }
            }
        } else if !kind.is_pax_global_extensions() && !kind.is_pax_local_extensions() {
            report.refuse(shown, "neither a file, a folder nor a link (a device or pipe)");
        }
    }
    Ok(report)
}

/// A hard link to the archive's entry `to` (also beneath the target), made without
/// following links on the way to either.
fn hard_link(root: &OwnedFd, to: &[u8], strip: usize, dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let comps: Vec<&[u8]> = to
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.contains(&&b".."[..]) || comps.len() <= strip {
        return Err(Errno::INVAL);
    }
    let (src_name, src_parents) = comps[strip..].split_last().ok_or(Errno::INVAL)?;
    let src_dir = walk(root, src_parents, false, Owner { uid: 0, gid: 0 })?.ok_or(Errno::NOENT)?;
    rustix::fs::linkat(&src_dir, OsStr::from_bytes(src_name), dir, name, AtFlags::empty())
}

/// The folder `comps` beneath `root`, each opened without following links; missing ones are
/// created (owned by `owner`) when `create`, else `None`.
fn walk(root: &OwnedFd, comps: &[&[u8]], create: bool, owner: Owner) -> Result<Option<OwnedFd>, Errno> {
    let mut dir = rustix::io::dup(root)?;
    for comp in comps {
        let name = OsStr::from_bytes(comp);
        dir = match open_dir(&dir, name) {
            Ok(next) => next,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                let next = open_dir(&dir, name)?;
                give(&next, owner, owner).map_err(|_| Errno::PERM)?;
                next
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(Some(dir))
}

fn open_dir(dir: impl AsFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Whether the regular file `name` in `dir` holds exactly what `src` yields (read in step,
/// never following a link).
fn same_content(dir: &OwnedFd, name: &OsStr, src: &mut impl Read) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut file = std::fs::File::from(fd);
    let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = match src.read(&mut a) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if n == 0 {
            // The archive's bytes are done: the file must be too.
            return matches!(file.read(&mut b[..1]), Ok(0));
        }
        if file.read_exact(&mut b[..n]).is_err() || a[..n] != b[..n] {
            return false;
        }
    }
}

fn is_type(st: &rustix::fs::Stat, kind: rustix::fs::FileType) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == kind
}

/// The archive's owner, unless it is root's (then the desktop user's).
fn owner_of(uid: Option<u64>, gid: Option<u64>, fallback: Owner) -> Owner {
    match (
        uid.and_then(|u| u32::try_from(u).ok()),
        gid.and_then(|g| u32::try_from(g).ok()),
    ) {
        (Some(uid), Some(gid)) if uid != 0 && gid != 0 => Owner { uid, gid },
        _ => fallback,
    }
}

fn ids(owner: Owner) -> (rustix::fs::Uid, rustix::fs::Gid) {
    (
        rustix::fs::Uid::from_raw(owner.uid),
        rustix::fs::Gid::from_raw(owner.gid),
    )
}

/// Gives `fd` to `owner`, else to `fallback`; a process that may give nothing away keeps it
/// (the start-up check refuses such a portal where desktops need the files).
fn give(fd: &impl AsFd, owner: Owner, fallback: Owner) -> Result<(), FilesError> {
    for o in [owner, fallback] {
        let (uid, gid) = ids(o);
        match rustix::fs::fchown(fd, Some(uid), Some(gid)) {
            Ok(()) => return Ok(()),
            Err(Errno::PERM) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
