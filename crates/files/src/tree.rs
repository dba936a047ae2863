//! One tree of user files (a home, the shared folder, a class folder), opened once as a
//! directory handle. Every operation walks its path one component at a time with
//! `O_NOFOLLOW`, relative to the handle of the folder before it, so neither a symlink nor a
//! rename racing the walk can lead outside the tree: the worst a race can do is make the
//! operation fail or act on another entry of the same tree.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::UNIX_EPOCH;

use cap_fs_ext::DirExt as _;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::name::{MAX_DEPTH, Name, NameError, RelPath};
use crate::source::{ReadSource, Source};

/// What went wrong, in terms a page or API can answer precisely.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    BadName(#[from] NameError),
    #[error("no such file or folder")]
    NotFound,
    #[error("a part of the path is a file, not a folder")]
    NotADirectory,
    #[error("this is a folder; the operation needs a file")]
    IsADirectory,
    #[error("this is a link; the portal shows links but never follows them")]
    Link,
    #[error("this is neither a file nor a folder")]
    NotAFile,
    #[error("an entry with this name already exists")]
    Exists,
    #[error("the folder is not empty")]
    NotEmpty,
    #[error("a folder cannot be moved or copied into itself")]
    IntoItself,
    #[error("too large: {limit}")]
    TooLarge { limit: Limit },
    #[error("this operation is not possible between these folders")]
    CrossDevice,
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for FilesError {
    fn from(e: io::Error) -> Self {
        FilesError::from(Errno::from_io_error(&e).unwrap_or(Errno::IO)).or_io(e)
    }
}

impl From<Errno> for FilesError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::NOENT => FilesError::NotFound,
            Errno::NOTDIR => FilesError::NotADirectory,
            Errno::ISDIR => FilesError::IsADirectory,
            // O_NOFOLLOW on a symlink.
            Errno::LOOP => FilesError::Link,
            Errno::EXIST => FilesError::Exists,
            Errno::NOTEMPTY => FilesError::NotEmpty,
            Errno::XDEV => FilesError::CrossDevice,
            Errno::FBIG | Errno::NOSPC | Errno::DQUOT => FilesError::TooLarge {
                limit: Limit {
                    bytes: 0,
                    kind: LimitKind::Disk,
                },
            },
            // EINVAL from rename: a folder into itself.
            Errno::INVAL => FilesError::IntoItself,
            other => FilesError::Io(other.into()),
        }
    }
}

impl FilesError {
    /// Keeps the original `io::Error` (its message) where no precise variant applies.
    fn or_io(self, original: io::Error) -> FilesError {
        match self {
            FilesError::Io(_) => FilesError::Io(original),
            precise => precise,
        }
    }
}

/// A limit that a write ran into, so the answer can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub kind: LimitKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The largest single upload the portal accepts.
    Upload,
    /// What is left of the user's quota.
    Quota,
    /// The disk itself is full (bytes unknown).
    Disk,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            LimitKind::Upload => write!(f, "uploads may be at most {} bytes", self.bytes),
            LimitKind::Quota => write!(f, "{} bytes of the quota are left", self.bytes),
            LimitKind::Disk => write!(f, "the disk is full"),
        }
    }
}

/// What a listing shows of one entry. Links are shown as links, never resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    /// Bytes for files, 0 for everything else.
    pub size: u64,
    /// Unix seconds of the last change of the content.
    pub modified: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Link,
    /// Sockets, pipes, devices: listed so nothing is hidden, never opened.
    Other,
}

/// What a folder holds, for quota bars and hand-in overviews.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    /// Unix seconds of the newest file's last change; 0 when there is none.
    pub newest: i64,
    /// Unix seconds of the newest status change (ctime) of any file or folder below `path`;
    /// 0 when there is none. Unlike the modification time, nobody but the kernel's clock sets
    /// it: a hand-in changed after its due time shows as late even if its times were reset.
    pub changed: i64,
}

/// What to do when the target name of a write, move or copy is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClash {
    /// Refuse with [`FilesError::Exists`].
    Fail,
    /// Take "name (2).ext", "name (3).ext", … (never overwrites).
    Number,
    /// Replace an existing file atomically (never a folder).
    Replace,
}

/// Who owns what the portal creates: the desktop's user, so it is editable inside the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// How many "name (n)" alternatives are tried before giving up.
const MAX_NUMBERED: u32 = 999;

/// A tree of files opened beneath one directory handle.
#[derive(Debug)]
pub struct Tree {
    root: Dir,
    owner: Option<Owner>,
}

impl Tree {
    /// Opens (and creates, if missing) the tree at `path`. `path` is trusted configuration
    /// (the files root and an id), never user input.
    pub fn open(path: &Path, owner: Option<Owner>) -> Result<Tree, FilesError> {
        std::fs::create_dir_all(path)?;
        let root = Dir::open_ambient_dir(path, ambient_authority())?;
        let tree = Tree { root, owner };
        tree.chown(&tree.root)?;
        Ok(tree)
    }

    /// The tree's own directory handle (for checks that need a scratch entry in it).
    pub(crate) fn root_fd(&self) -> &Dir {
        &self.root
    }

    /// The folder at `path`, opened without following any link on the way.
    fn dir(&self, path: &RelPath) -> Result<Dir, FilesError> {
        let mut dir = self.root.try_clone()?;
        for name in path.names() {
            dir = match dir.open_dir_nofollow(name.as_str()) {
                Ok(next) => next,
                // Say "link" rather than "not a folder" when that is what is in the way.
                Err(_) if dir.symlink_metadata(name.as_str()).is_ok_and(|m| m.is_symlink()) => {
                    return Err(FilesError::Link);
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(dir)
    }

    /// The parent folder of `path` and its last component; the root has none.
    fn parent<'p>(&self, path: &'p RelPath) -> Result<(Dir, &'p Name), FilesError> {
        let (parent, name) = path.split_last().ok_or(FilesError::IsADirectory)?;
        Ok((self.dir(&parent)?, name))
    }

    /// The entries of a folder, sorted folders first, then by name. The portal's temporary
    /// files are left out.
    pub fn list(&self, path: &RelPath) -> Result<Vec<Entry>, FilesError> {
        let dir = self.dir(path)?;
        let mut entries = Vec::new();
        for entry in dir.entries()? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                // Not UTF-8: created inside the desktop by a program that ignores the locale.
                // Listed lossily so the user sees it, but such a name cannot be addressed.
                entries.push(entry_of(&dir, entry.file_name().to_string_lossy().into_owned())?);
                continue;
            };
            if Name::is_reserved(&name) {
                continue;
            }
            match entry_of(&dir, name) {
                Ok(e) => entries.push(e),
                // Removed while we listed: the listing is a snapshot anyway.
                Err(FilesError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir, a.name.to_lowercase(), &a.name).cmp(&(
                b.kind != EntryKind::Dir,
                b.name.to_lowercase(),
                &b.name,
            ))
        });
        Ok(entries)
    }

    /// What `path` is, without following a link at its end. The root is a folder.
    pub fn stat(&self, path: &RelPath) -> Result<Entry, FilesError> {
        match path.split_last() {
            None => Ok(Entry {
                name: String::new(),
                kind: EntryKind::Dir,
                size: 0,
                modified: 0,
            }),
            Some((parent, name)) => entry_of(&self.dir(&parent)?, name.to_string()),
        }
    }

    /// Opens a regular file for reading. Links, pipes and devices are refused before they are
    /// opened for real (a pipe would block, a device could be anything).
    pub fn open_read(&self, path: &RelPath) -> Result<(File, Entry), FilesError> {
        let (dir, name) = self.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(FilesError::IsADirectory);
        }
        if !meta.is_file() {
            return Err(FilesError::NotAFile);
        }
        let entry = Entry {
            name: name.to_string(),
            kind: EntryKind::File,
            size: meta.len(),
            modified: unix_secs(meta.modified().ok()),
        };
        Ok((file, entry))
    }

    /// Writes a new file from `src`, at most `limit.bytes` bytes. The data goes to a hidden
    /// temporary file first and is renamed into place only when complete: an upload that
    /// breaks off, or runs into the limit, leaves nothing behind. Returns the name used and the
    /// number of bytes written.
    pub fn write(
        &self,
        path: &RelPath,
        src: &mut dyn Read,
        limit: Limit,
        on_clash: OnClash,
    ) -> Result<(Name, u64), FilesError> {
        self.write_as_of(path, &mut ReadSource::new(src), limit, on_clash, None)
    }

    /// As [`Tree::write`], from a [`Source`] that writes its pieces itself (an upload's
    /// network buffers, written as they are).
    pub fn write_from(
        &self,
        path: &RelPath,
        src: &mut dyn Source,
        limit: Limit,
        on_clash: OnClash,
    ) -> Result<(Name, u64), FilesError> {
        self.write_as_of(path, src, limit, on_clash, None)
    }

    /// As [`Tree::write_from`], the new file's modification time set to `modified` (a copy
    /// keeps its original's, so a copied hand-in still shows when it was last changed).
    fn write_as_of(
        &self,
        path: &RelPath,
        src: &mut dyn Source,
        limit: Limit,
        on_clash: OnClash,
        modified: Option<std::time::SystemTime>,
    ) -> Result<(Name, u64), FilesError> {
        let (dir, name) = self.parent(path)?;
        let name = Name::new(name.as_str())?;
        let temp = TempFile::create(&dir)?;
        let mut file = &temp.file;
        let mut written: u64 = 0;
        loop {
            let n = src.write_next(&mut file)?;
            if n == 0 {
                break;
            }
            // Past the limit by at most one piece, in the temporary file that is removed now.
            written += n;
            if written > limit.bytes {
                return Err(FilesError::TooLarge { limit });
            }
        }
        if let Some(time) = modified {
            temp.file.set_modified(time)?;
        }
        self.chown(&temp.file)?;
        let name = place(&dir, &temp.name, &dir, &name, on_clash)?;
        temp.keep();
        Ok((name, written))
    }

    /// Creates a folder (its parent must exist).
    pub fn mkdir(&self, path: &RelPath) -> Result<(), FilesError> {
        let (dir, name) = self.parent(path)?;
        let name = Name::new(name.as_str())?;
        rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755))?;
        let created = dir.open_dir_nofollow(name.as_str())?;
        self.chown(&created)
    }

    /// Moves or renames an entry within this tree. Never replaces anything.
    pub fn rename(&self, from: &RelPath, to: &RelPath, on_clash: OnClash) -> Result<Name, FilesError> {
        if to.starts_with(from) {
            return Err(FilesError::IntoItself);
        }
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        let to_name = Name::new(to_name.as_str())?;
        let on_clash = if on_clash == OnClash::Replace {
            OnClash::Fail
        } else {
            on_clash
        };
        place(&from_dir, from_name, &to_dir, &to_name, on_clash)
    }

    /// Moves an entry of this tree to `to` in `other` (into the trash and back), keeping its
    /// name as it is (a name a desktop gave it may not be one the portal would give). Both
    /// trees must be on one file system. Never replaces anything.
    pub fn move_to(&self, from: &RelPath, other: &Tree, to: &RelPath, on_clash: OnClash) -> Result<Name, FilesError> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = other.parent(to)?;
        let on_clash = if on_clash == OnClash::Replace {
            OnClash::Fail
        } else {
            on_clash
        };
        place(&from_dir, from_name, &to_dir, to_name, on_clash)
    }

    /// As [`Tree::move_to`], but also between file systems (the shared folder on a network
    /// share, homes on local disk): where the kernel cannot rename across them (EXDEV), the
    /// entry is copied (at most `limit.bytes`; links inside are skipped, as in a copy) and the
    /// original removed only once the copy is complete. A copy that fails is removed again, so
    /// the entry is either moved or where it was, never half in both.
    pub fn move_between(
        &self,
        from: &RelPath,
        other: &Tree,
        to: &RelPath,
        limit: Limit,
        on_clash: OnClash,
    ) -> Result<Name, FilesError> {
        match self.move_to(from, other, to, on_clash) {
            Err(FilesError::CrossDevice) => {}
            done => return done,
        }
        let (to_parent, to_name) = to.split_last().ok_or(FilesError::Exists)?;
        // The name is chosen first, so a failed copy is removed by the name it was given.
        let name = other.free_name(&to_parent, to_name, on_clash)?;
        let target = to_parent.join(name.clone())?;
        if let Err(e) = copy_between(self, from, other, &target, limit, OnClash::Fail) {
            // Best effort: the copy may not have got as far as creating anything.
            let _ = other.remove(&target);
            return Err(e);
        }
        self.remove(from)?;
        Ok(name)
    }

    /// Copies a file or a folder (recursively; links inside are skipped, not followed) within
    /// this tree, at most `limit.bytes` in all. Returns the name used and the bytes copied.
    pub fn copy(
        &self,
        from: &RelPath,
        to: &RelPath,
        limit: Limit,
        on_clash: OnClash,
    ) -> Result<(Name, u64), FilesError> {
        if to != from && to.starts_with(from) {
            return Err(FilesError::IntoItself);
        }
        copy_between(self, from, self, to, limit, on_clash)
    }

    /// The name `name` in `parent`, or the first free "name (n)" when it is taken and
    /// `on_clash` allows numbering.
    fn free_name(&self, parent: &RelPath, name: &Name, on_clash: OnClash) -> Result<Name, FilesError> {
        let name = Name::new(name.as_str())?;
        let dir = self.dir(parent)?;
        let taken = |n: &Name| dir.symlink_metadata(n.as_str()).is_ok();
        if !taken(&name) {
            return Ok(name);
        }
        if on_clash != OnClash::Number {
            return Err(FilesError::Exists);
        }
        (2..=MAX_NUMBERED)
            .map(|i| name.numbered(i))
            .find(|n| !taken(n))
            .ok_or(FilesError::Exists)
    }

    /// Removes a file, link or folder with everything in it, for good. Links are removed, not
    /// followed.
    pub fn remove(&self, path: &RelPath) -> Result<(), FilesError> {
        let (dir, name) = self.parent(path)?;
        match dir.symlink_metadata(name.as_str())?.is_dir() {
            true => dir.remove_dir_all(name.as_str())?,
            false => rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty())?,
        }
        Ok(())
    }

    /// Bytes in regular files of the whole tree (links and their targets not counted).
    pub fn usage(&self) -> Result<u64, FilesError> {
        Ok(self.summary(&RelPath::root())?.bytes)
    }

    /// Files, bytes and the newest change under `path` (links and their targets not counted).
    pub fn summary(&self, path: &RelPath) -> Result<Summary, FilesError> {
        fn walk(dir: &Dir, depth: usize, sum: &mut Summary) -> Result<(), FilesError> {
            for entry in dir.entries()? {
                let entry = entry?;
                if entry.file_name().to_str().is_some_and(Name::is_reserved) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                sum.changed = sum.changed.max(cap_std::fs::MetadataExt::ctime(&meta));
                if meta.is_file() {
                    sum.files += 1;
                    sum.bytes += meta.len();
                    sum.newest = sum.newest.max(unix_secs(meta.modified().ok().map(|t| t.into_std())));
                } else if meta.is_dir()
                    && depth < 4 * MAX_DEPTH
                    && let Ok(sub) = dir.open_dir_nofollow(entry.file_name())
                {
                    walk(&sub, depth + 1, sum)?;
                }
            }
            Ok(())
        }
        let mut sum = Summary::default();
        walk(&self.dir(path)?, 0, &mut sum)?;
        Ok(sum)
    }

    /// Removes the portal's temporary files that a crash left behind (at start).
    pub fn sweep_temporaries(&self) -> Result<usize, FilesError> {
        let mut removed = 0;
        for entry in self.root.entries()? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(Name::is_reserved)
                && rustix::fs::unlinkat(&self.root, entry.file_name(), AtFlags::empty()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn chown(&self, fd: &impl AsFd) -> Result<(), FilesError> {
        let Some(owner) = self.owner else { return Ok(()) };
        let uid = rustix::fs::Uid::from_raw(owner.uid);
        let gid = rustix::fs::Gid::from_raw(owner.gid);
        // chownat with an empty path: works on the `O_PATH` handles cap-std opens folders with.
        match rustix::fs::chownat(fd, "", Some(uid), Some(gid), AtFlags::EMPTY_PATH) {
            Ok(()) => Ok(()),
            // Not allowed to give files away (a portal running as neither root nor the
            // desktop's user, as in the container deployment): the files stay the portal's.
            // Reading and writing through the portal still work; editing them inside a desktop
            // needs the portal to run as root or as that user (README, Files).
            Err(Errno::PERM) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Renames `from_name` in `from_dir` to `to_name` in `to_dir` without ever replacing a folder,
/// numbering or refusing on a clash as asked. Both names are single components, so the kernel
/// resolves nothing but the last entry, which rename never follows.
fn place(
    from_dir: &Dir,
    from_name: &Name,
    to_dir: &Dir,
    to_name: &Name,
    on_clash: OnClash,
) -> Result<Name, FilesError> {
    if on_clash == OnClash::Replace {
        if to_dir.symlink_metadata(to_name.as_str()).is_ok_and(|m| m.is_dir()) {
            return Err(FilesError::Exists);
        }
        rustix::fs::renameat(from_dir, from_name.as_str(), to_dir, to_name.as_str())?;
        return Ok(to_name.clone());
    }
    let candidates = std::iter::once(to_name.clone()).chain((2..=MAX_NUMBERED).map(|i| to_name.numbered(i)));
    for candidate in candidates {
        match rustix::fs::renameat_with(
            from_dir,
            from_name.as_str(),
            to_dir,
            candidate.as_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(candidate),
            Err(Errno::EXIST) if on_clash == OnClash::Number => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(FilesError::Exists)
}

/// The entry `name` in `dir`, from `lstat` (a link is described, not followed).
fn entry_of(dir: &Dir, name: String) -> Result<Entry, FilesError> {
    let meta = dir.symlink_metadata(&name)?;
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Link
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    let size = if kind == EntryKind::File { meta.len() } else { 0 };
    Ok(Entry {
        name,
        kind,
        size,
        modified: unix_secs(meta.modified().ok().map(|t| t.into_std())),
    })
}

fn unix_secs(t: Option<std::time::SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// A hidden temporary file that is removed when dropped, unless kept.
struct TempFile<'d> {
    dir: &'d Dir,
    name: Name,
    file: File,
    kept: bool,
}

impl<'d> TempFile<'d> {
    fn create(dir: &'d Dir) -> Result<TempFile<'d>, FilesError> {
        let name = Name::existing(&format!(".ird-upload-{:016x}", rand::random::<u64>()))?;
        let fd = rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        Ok(TempFile {
            dir,
            name,
            file: File::from(fd),
            kept: false,
        })
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = rustix::fs::unlinkat(self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Copies `from` of `src` to `to` in `dst` (the same tree or another one): a file, or a folder
/// with its files and folders (links and pipes inside are skipped, never followed), at most
/// `limit.bytes` in all. Returns the name used and the bytes copied.
pub fn copy_between(
    src: &Tree,
    from: &RelPath,
    dst: &Tree,
    to: &RelPath,
    limit: Limit,
    on_clash: OnClash,
) -> Result<(Name, u64), FilesError> {
    match src.stat(from)?.kind {
        EntryKind::File => {
            let (mut file, _) = src.open_read(from)?;
            let modified = file.metadata()?.modified().ok();
            dst.write_as_of(to, &mut ReadSource::new(&mut file), limit, on_clash, modified)
        }
        EntryKind::Dir => {
            let (to_parent, to_name) = to.split_last().ok_or(FilesError::Exists)?;
            let name = dst.free_name(&to_parent, to_name, on_clash)?;
            let target = to_parent.join(name.clone())?;
            let mut budget = limit;
            copy_dir(src, from, dst, &target, &mut budget, 0)?;
            Ok((name, limit.bytes - budget.bytes))
        }
        EntryKind::Link => Err(FilesError::Link),
        EntryKind::Other => Err(FilesError::NotAFile),
    }
}

fn copy_dir(
    src: &Tree,
    from: &RelPath,
    dst: &Tree,
    to: &RelPath,
    budget: &mut Limit,
    depth: usize,
) -> Result<(), FilesError> {
    if depth > MAX_DEPTH {
        return Err(NameError::TooDeep.into());
    }
    dst.mkdir(to)?;
    for entry in src.list(from)? {
        let Ok(name) = Name::new(&entry.name) else { continue };
        let (from_path, to_path) = (from.join(name.clone())?, to.join(name)?);
        match entry.kind {
            EntryKind::File => {
                let (mut file, _) = src.open_read(&from_path)?;
                let modified = file.metadata()?.modified().ok();
                let (_, n) = dst.write_as_of(
                    &to_path,
                    &mut ReadSource::new(&mut file),
                    *budget,
                    OnClash::Fail,
                    modified,
                )?;
                budget.bytes -= n;
            }
            EntryKind::Dir => copy_dir(src, &from_path, dst, &to_path, budget, depth + 1)?,
            EntryKind::Link | EntryKind::Other => {}
        }
    }
    Ok(())
}
