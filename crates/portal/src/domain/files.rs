//! Users' file spaces: which trees a user sees (her home, the school's shared folder), who may
//! change them, quotas and the trash. The file operations themselves, and their safety against
//! what a desktop puts into a tree, are `portal_files`'; this module decides who gets which
//! tree and runs the operations on the blocking pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portal_files::{
    Entry, FilesError, Limit, LimitKind, Name, OnClash, Owner, RelPath, Trash, TrashItem, Tree, ZipReport,
};
use portal_store::{Assignment, Role, User};

use crate::config::Config;

/// How long a computed usage is believed. What a desktop writes shows in the bar after this;
/// what the portal writes is added at once.
const USAGE_TTL: Duration = Duration::from_secs(30);
pub(crate) const MIB: u64 = 1024 * 1024;

/// What a name keeps unescaped in a URL path segment: RFC 3986's unreserved characters.
pub const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Names a zipped folder's direct subfolders for people; `None` keeps a name.
pub type Renamer = Box<dyn Fn(&str) -> Option<String> + Send>;

/// Why a file operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("unknown space {0:?}: use \"home\" or \"shared\"")]
    UnknownSpace(String),
    #[error("this folder is read-only for you")]
    ReadOnly,
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("the file operation was interrupted")]
    Interrupted,
}

/// The spaces a user can address in `/files/{space}/…` and `/api/files/{space}/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaceKind {
    /// The user's own home, also `/home/kasm-user` in each of her desktops.
    Home,
    /// The school's shared folder: everyone reads, teachers and administrators write.
    Shared,
    /// A class's folder (`class/<group>`): its teachers hand material out there, its
    /// students read it.
    Class(String),
    /// A student's own hand-in for an assignment (`handin/<id>`): hers to change until due.
    Handin(String),
    /// Every hand-in of an assignment, a folder per student (`handins/<id>`), for its teacher.
    Handins(String),
    /// A student's feedback on an assignment (`feedback/<id>`): what her teacher gave back,
    /// read-only for her.
    Feedback(String),
    /// Every student's feedback of an assignment, a folder per student (`feedbacks/<id>`): for
    /// its teachers to give and tidy.
    Feedbacks(String),
}

impl SpaceKind {
    /// From a URL: `home`, `shared`, or `class` with the group as the path's first component
    /// (returned with the rest of the path).
    pub fn parse(space: &str, path: RelPath) -> Result<(SpaceKind, RelPath), SpaceError> {
        match space {
            "home" => Ok((SpaceKind::Home, path)),
            "shared" => Ok((SpaceKind::Shared, path)),
            "class" | "handin" | "handins" | "feedback" | "feedbacks" => {
                let names = path.names();
                let first = names.first().ok_or_else(|| SpaceError::UnknownSpace(space.into()))?;
                let rest = RelPath::from_names(names[1..].to_vec()).map_err(FilesError::from)?;
                let first = first.to_string();
                let kind = match space {
                    "class" => SpaceKind::Class(first),
                    "handin" => SpaceKind::Handin(first),
                    "handins" => SpaceKind::Handins(first),
                    "feedback" => SpaceKind::Feedback(first),
                    _ => SpaceKind::Feedbacks(first),
                };
                Ok((kind, rest))
            }
            other => Err(SpaceError::UnknownSpace(other.chars().take(64).collect())),
        }
    }

    /// What people and archives call it: the group or assignment, else `home` / `shared`.
    pub fn folder_name(&self) -> String {
        match self {
            SpaceKind::Class(name)
            | SpaceKind::Handin(name)
            | SpaceKind::Handins(name)
            | SpaceKind::Feedback(name)
            | SpaceKind::Feedbacks(name) => name.clone(),
            other => other.as_str().to_owned(),
        }
    }

    /// The first segment of its URLs.
    pub fn as_str(&self) -> &'static str {
        match self {
            SpaceKind::Home => "home",
            SpaceKind::Shared => "shared",
            SpaceKind::Class(_) => "class",
            SpaceKind::Handin(_) => "handin",
            SpaceKind::Handins(_) => "handins",
            SpaceKind::Feedback(_) => "feedback",
            SpaceKind::Feedbacks(_) => "feedbacks",
        }
    }

    /// Its URL prefix, `/files/home/` or `/files/class/<group>/` (the group percent-encoded).
    pub fn url_base(&self, prefix: &str) -> String {
        match self {
            SpaceKind::Class(name)
            | SpaceKind::Handin(name)
            | SpaceKind::Handins(name)
            | SpaceKind::Feedback(name)
            | SpaceKind::Feedbacks(name) => format!(
                "{prefix}/{}/{}/",
                self.as_str(),
                percent_encoding::utf8_percent_encode(name, PATH_SEGMENT)
            ),
            other => format!("{prefix}/{}/", other.as_str()),
        }
    }
}

/// A class's folder under the files root `root`.
pub fn class_dir_in(root: &std::path::Path, group: &str) -> PathBuf {
    root.join("classes").join(class_key(group))
}

/// Where a class's folder appears inside a desktop: `~/Klassen/<group>`, the group's name made
/// safe for a path (no `/`, no characters Docker's mount syntax would misread).
pub fn class_mount_target(group: &str) -> String {
    format!("/home/kasm-user/Klassen/{}", mount_name(group, &class_key(group)))
}

/// A name (a group's, an assignment's title) as one path component inside a desktop: `/`,
/// `,`, `:` and control characters become `_`; `fallback` when nothing usable is left.
pub fn mount_name(name: &str, fallback: &str) -> String {
    let mut name: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '/' || c == ',' || c == ':' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name = fallback.to_owned();
    }
    name
}

/// Whether `user` sees every hand-in of `a` and gives feedback: its owner, a teacher of its
/// group, an administrator.
pub fn teaches(user: &User, a: &Assignment) -> bool {
    let teacher_of_group = user.role == Role::Teacher && user.groups.contains(&a.group_name);
    user.id == a.owner_id || teacher_of_group || user.role == Role::Admin
}

/// A class folder's directory name: group names come from IServ and may be anything, so the
/// disk gets a hash; people see the group's name.
fn class_key(group: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(group.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("g-{hex}")
}

/// Every user's files under one root: `homes/<home>`, `shared`, `trash/…`.
#[derive(Debug)]
pub struct FileSpaces {
    root: PathBuf,
    owner: Owner,
    max_upload: u64,
    quotas: [(Role, u64); 3],
    trash_days: u64,
    /// Usage per tree directory, with when it was computed.
    usage: Mutex<HashMap<PathBuf, (Instant, u64)>>,
}

impl FileSpaces {
    pub fn new(config: &Config) -> FileSpaces {
        let f = &config.files;
        FileSpaces {
            root: config.files_root(),
            owner: Owner { uid: f.uid, gid: f.gid },
            max_upload: f.max_upload_mib * MIB,
            quotas: [
                (Role::Admin, f.quota_admin_mib * MIB),
                (Role::Teacher, f.quota_teacher_mib * MIB),
                (Role::Student, f.quota_student_mib * MIB),
            ],
            trash_days: f.trash_days,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Where a user's home lives on the host (the desktop's bind mount source). Keyed by the
    /// account's home name, which is fixed when the account is created and never reused.
    pub fn home_dir(&self, user: &User) -> PathBuf {
        super::desktop_mounts::home_dir_in(&self.root, &user.home_name)
    }

    pub fn shared_dir(&self) -> PathBuf {
        super::desktop_mounts::shared_dir_in(&self.root)
    }

    /// Who owns what the portal writes (the desktop's user).
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// How long deleted files stay restorable.
    pub fn trash_days(&self) -> u64 {
        self.trash_days
    }

    /// A class's folder on the host (read-only mount source for its students).
    pub fn class_dir(&self, group: &str) -> PathBuf {
        class_dir_in(&self.root, group)
    }

    /// Opens one of the user's spaces. A class is open to its members (teachers write,
    /// students read) and to administrators; to anyone else it does not exist.
    pub async fn open(self: &Arc<Self>, user: &User, kind: SpaceKind) -> Result<Space, SpaceError> {
        // The home name is a single path component by construction; refuse anything else
        // rather than join it into a path.
        Name::new(&user.home_name).map_err(FilesError::from)?;
        let (dir, trash_dir, writable, quota) = match &kind {
            SpaceKind::Home => (
                self.home_dir(user),
                self.root.join("trash/homes").join(&user.home_name),
                true,
                self.quota_of(user.role),
            ),
            SpaceKind::Shared => (
                self.shared_dir(),
                self.root.join("trash/shared"),
                user.role != Role::Student,
                None,
            ),
            SpaceKind::Class(group) => {
                let member = user.groups.iter().any(|g| g == group);
                if !member && user.role != Role::Admin {
                    return Err(SpaceError::Files(FilesError::NotFound));
                }
                (
                    self.class_dir(group),
                    self.root.join("trash/classes").join(class_key(group)),
                    user.role != Role::Student,
                    None,
                )
            }
            // Opened with their assignment: `open_handin`, `open_handins`.
            SpaceKind::Handin(_) | SpaceKind::Handins(_) | SpaceKind::Feedback(_) | SpaceKind::Feedbacks(_) => {
                return Err(SpaceError::Files(FilesError::NotFound));
            }
        };
        self.open_tree(kind, dir, trash_dir, writable, quota).await
    }

    /// A student's hand-in folder for `a`: hers while the assignment is open (or late
    /// hand-ins are allowed), read-only after; only members of its group have one. Once
    /// sealed, she sees the sealed copy — what her teacher sees.
    pub async fn open_handin(self: &Arc<Self>, user: &User, a: &Assignment, now: i64) -> Result<Space, SpaceError> {
        if !user.groups.contains(&a.group_name) {
            return Err(SpaceError::Files(FilesError::NotFound));
        }
        Name::new(&user.home_name).map_err(FilesError::from)?;
        let dir = self.handin_source(a, &user.home_name)?;
        let trash = self.root.join("trash/handins").join(&a.id).join(&user.home_name);
        self.open_tree(
            SpaceKind::Handin(a.id.clone()),
            dir,
            trash,
            a.open_at(now),
            self.quota_of(user.role),
        )
        .await
    }

    /// Every hand-in of `a` (a folder per student, by home name), read-only: for its owner,
    /// the group's teachers and administrators; to anyone else it does not exist.
    pub async fn open_handins(self: &Arc<Self>, user: &User, a: &Assignment) -> Result<Space, SpaceError> {
        if !teaches(user, a) {
            return Err(SpaceError::Files(FilesError::NotFound));
        }
        let dir = match a.sealed_at {
            Some(_) => self.sealed_dir(&a.id)?,
            None => self.handins_dir(&a.id)?,
        };
        let trash = self.root.join("trash/handins").join(&a.id).join("_all");
        self.open_tree(SpaceKind::Handins(a.id.clone()), dir, trash, false, None)
            .await
    }

    /// A student's feedback on `a`, read-only: only members of its group have one.
    pub async fn open_feedback(self: &Arc<Self>, user: &User, a: &Assignment) -> Result<Space, SpaceError> {
        if !user.groups.contains(&a.group_name) {
            return Err(SpaceError::Files(FilesError::NotFound));
        }
        Name::new(&user.home_name).map_err(FilesError::from)?;
        let dir = self.feedback_dir(&a.id)?.join(&user.home_name);
        let trash = self.root.join("trash/feedback").join(&a.id).join(&user.home_name);
        self.open_tree(SpaceKind::Feedback(a.id.clone()), dir, trash, false, None)
            .await
    }

    /// Every student's feedback on `a` (a folder per student, by home name), writable: for
    /// its owner, the group's teachers and administrators; to anyone else it does not exist.
    pub async fn open_feedbacks(self: &Arc<Self>, user: &User, a: &Assignment) -> Result<Space, SpaceError> {
        if !teaches(user, a) {
            return Err(SpaceError::Files(FilesError::NotFound));
        }
        let dir = self.feedback_dir(&a.id)?;
        let trash = self.root.join("trash/feedback").join(&a.id).join("_all");
        self.open_tree(
            SpaceKind::Feedbacks(a.id.clone()),
            dir,
            trash,
            true,
            self.quota_of(user.role),
        )
        .await
    }

    /// Where an assignment's hand-ins live. The id is the store's (random, URL-safe); checked
    /// to be one component all the same.
    pub fn handins_dir(&self, id: &str) -> Result<PathBuf, SpaceError> {
        Name::new(id).map_err(FilesError::from)?;
        Ok(self.root.join("handins").join(id))
    }

    /// Where the sealed copy of an assignment's hand-ins lives (`domain::handins`): mounted
    /// nowhere writable, so after the due time nothing changes it.
    pub fn sealed_dir(&self, id: &str) -> Result<PathBuf, SpaceError> {
        Name::new(id).map_err(FilesError::from)?;
        Ok(self.root.join("sealed").join(id))
    }

    /// Where the feedback of an assignment lives, a folder per student.
    pub fn feedback_dir(&self, id: &str) -> Result<PathBuf, SpaceError> {
        Name::new(id).map_err(FilesError::from)?;
        Ok(self.root.join("feedback").join(id))
    }

    /// The folder a student's hand-in is read from (and mounted from): the live one until
    /// the hand-ins are sealed, the sealed copy after.
    pub fn handin_source(&self, a: &Assignment, home_name: &str) -> Result<PathBuf, SpaceError> {
        Name::new(home_name).map_err(FilesError::from)?;
        Ok(match a.sealed_at {
            Some(_) => self.sealed_dir(&a.id)?,
            None => self.handins_dir(&a.id)?,
        }
        .join(home_name))
    }

    /// The files root (the administrators' disk use walks it).
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// The usage of `user`'s home when it is over its quota (a desktop wrote past it), measured
    /// now rather than taken from the 30 s cache; `None` when it is within, or has no quota.
    pub async fn home_over_quota(self: &Arc<Self>, user: &User) -> Result<Option<Usage>, SpaceError> {
        if self.quota_of(user.role).is_none() {
            return Ok(None);
        }
        let home = self.open(user, SpaceKind::Home).await?;
        self.forget_usage(&home.dir);
        let usage = home.usage().await?;
        Ok(usage.quota.filter(|q| usage.used > *q).map(|_| usage))
    }

    /// Bytes a user of `role` may keep in her home; `None`: no quota.
    pub fn quota_for(&self, role: Role) -> Option<u64> {
        self.quota_of(role)
    }

    /// Removes an assignment's hand-ins, their sealed copy and the feedback for good (with
    /// the assignment).
    pub async fn remove_handins(&self, id: &str) -> Result<(), SpaceError> {
        Name::new(id).map_err(FilesError::from)?;
        for place in ["handins", "sealed", "feedback"] {
            let parent = self.root.join(place);
            let path = RelPath::parse(id).map_err(FilesError::from)?;
            blocking(move || match Tree::open(&parent, None).and_then(|t| t.remove(&path)) {
                Ok(()) | Err(FilesError::NotFound) => Ok(()),
                Err(e) => Err(SpaceError::Files(e)),
            })
            .await??;
        }
        Ok(())
    }

    async fn open_tree(
        self: &Arc<Self>,
        kind: SpaceKind,
        dir: PathBuf,
        trash_dir: PathBuf,
        writable: bool,
        quota: Option<u64>,
    ) -> Result<Space, SpaceError> {
        let owner = self.owner;
        let opened = dir.clone();
        let (tree, trash) = blocking(move || {
            Ok::<_, SpaceError>((
                Tree::open(&opened, Some(owner))?,
                Trash::new(Tree::open(&trash_dir, None)?),
            ))
        })
        .await??;
        Ok(Space {
            spaces: self.clone(),
            kind,
            dir,
            tree: Arc::new(tree),
            trash: Arc::new(trash),
            writable,
            quota,
        })
    }

    fn quota_of(&self, role: Role) -> Option<u64> {
        self.quotas
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, q)| *q)
            .filter(|q| *q > 0)
    }

    fn cached_usage(&self, key: &PathBuf) -> Option<u64> {
        let usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        usage
            .get(key)
            .filter(|(at, _)| at.elapsed() < USAGE_TTL)
            .map(|(_, u)| *u)
    }

    fn set_usage(&self, key: PathBuf, bytes: u64) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if usage.len() > 10_000 {
            usage.retain(|_, (at, _)| at.elapsed() < USAGE_TTL);
        }
        usage.insert(key, (Instant::now(), bytes));
    }

    fn forget_usage(&self, key: &PathBuf) {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    fn add_usage(&self, key: &PathBuf, bytes: i64) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, u)) = usage.get_mut(key) {
            *u = u.saturating_add_signed(bytes);
        }
    }
}

/// One opened space of one user.
#[derive(Clone)]
pub struct Space {
    spaces: Arc<FileSpaces>,
    pub kind: SpaceKind,
    /// The tree's directory on the host; also the key of its usage.
    dir: PathBuf,
    tree: Arc<Tree>,
    trash: Arc<Trash>,
    /// Whether this user may change anything here.
    pub writable: bool,
    /// Bytes this user may keep here; `None`: no quota.
    pub quota: Option<u64>,
}

/// Whether [`Space::transfer`] moves or copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Move,
    Copy,
}

/// How full a space is, for the bar on the page.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Usage {
    pub used: u64,
    pub quota: Option<u64>,
}

impl Space {
    fn check_writable(&self) -> Result<(), SpaceError> {
        if self.writable {
            Ok(())
        } else {
            Err(SpaceError::ReadOnly)
        }
    }

    pub async fn list(&self, path: RelPath) -> Result<Vec<Entry>, SpaceError> {
        let tree = self.tree.clone();
        Ok(blocking(move || tree.list(&path)).await??)
    }

    pub async fn stat(&self, path: RelPath) -> Result<Entry, SpaceError> {
        let tree = self.tree.clone();
        Ok(blocking(move || tree.stat(&path)).await??)
    }

    /// A regular file for reading (links, pipes and devices are refused).
    pub async fn open_read(&self, path: RelPath) -> Result<(std::fs::File, Entry), SpaceError> {
        let tree = self.tree.clone();
        Ok(blocking(move || tree.open_read(&path)).await??)
    }

    /// Files, bytes and the newest change in `path` (hand-in overviews).
    pub async fn summary(&self, path: RelPath) -> Result<portal_files::Summary, SpaceError> {
        let tree = self.tree.clone();
        Ok(blocking(move || tree.summary(&path)).await??)
    }

    /// How much is used; computed at most every 30 s.
    pub async fn usage(&self) -> Result<Usage, SpaceError> {
        let used = self.used().await?;
        Ok(Usage {
            used,
            quota: self.quota,
        })
    }

    async fn used(&self) -> Result<u64, SpaceError> {
        let key = self.dir.clone();
        if let Some(u) = self.spaces.cached_usage(&key) {
            return Ok(u);
        }
        let tree = self.tree.clone();
        let used = blocking(move || tree.usage()).await??;
        self.spaces.set_usage(key, used);
        Ok(used)
    }

    /// The most the next write may add: the upload limit, or what is left of the quota if that
    /// is less (named in the refusal).
    async fn write_limit(&self) -> Result<Limit, SpaceError> {
        let upload = Limit {
            bytes: self.spaces.max_upload,
            kind: LimitKind::Upload,
        };
        let Some(quota) = self.quota else { return Ok(upload) };
        let left = quota.saturating_sub(self.used().await?);
        Ok(if left < upload.bytes {
            Limit {
                bytes: left,
                kind: LimitKind::Quota,
            }
        } else {
            upload
        })
    }

    /// Writes a file from a blocking source (an upload bridged from the request body).
    pub async fn write(
        &self,
        path: RelPath,
        src: impl portal_files::Source + Send + 'static,
        on_clash: OnClash,
    ) -> Result<(Name, u64), SpaceError> {
        self.check_writable()?;
        let limit = self.write_limit().await?;
        let tree = self.tree.clone();
        let mut src = src;
        let written = blocking(move || tree.write_from(&path, &mut src, limit, on_clash)).await??;
        self.spaces.add_usage(&self.dir, written.1 as i64);
        Ok(written)
    }

    pub async fn mkdir(&self, path: RelPath) -> Result<(), SpaceError> {
        self.check_writable()?;
        let tree = self.tree.clone();
        Ok(blocking(move || tree.mkdir(&path)).await??)
    }

    pub async fn rename(&self, from: RelPath, to: RelPath) -> Result<Name, SpaceError> {
        self.check_writable()?;
        let tree = self.tree.clone();
        Ok(blocking(move || tree.rename(&from, &to, OnClash::Fail)).await??)
    }

    pub async fn copy(&self, from: RelPath, to: RelPath) -> Result<(Name, u64), SpaceError> {
        self.check_writable()?;
        let limit = self.write_limit().await?;
        let tree = self.tree.clone();
        let copied = blocking(move || tree.copy(&from, &to, limit, OnClash::Fail)).await??;
        self.spaces.add_usage(&self.dir, copied.1 as i64);
        Ok(copied)
    }

    /// Copies `path` of this space into `class`'s folder (a handout: the class sees this copy
    /// until it is withdrawn there). A name taken in the class folder gets a number.
    pub async fn publish_to(&self, path: RelPath, class: &Space) -> Result<Name, SpaceError> {
        class.check_writable()?;
        let (from, to) = (self.tree.clone(), class.tree.clone());
        let name = path.split_last().map(|(_, n)| n.clone()).ok_or(SpaceError::ReadOnly)?;
        let limit = Limit {
            bytes: self.spaces.max_upload.saturating_mul(16),
            kind: LimitKind::Upload,
        };
        Ok(blocking(move || {
            let target = RelPath::root().join(name)?;
            portal_files::copy_between(&from, &path, &to, &target, limit, OnClash::Number).map(|(n, _)| n)
        })
        .await??)
    }

    /// Writes a folder (or the whole space) to `out` as a zip, on the blocking pool.
    /// `rename` names the folder's direct subfolders for people (hand-ins: home name →
    /// username); `None` keeps a name.
    pub async fn zip(
        &self,
        path: RelPath,
        rename: Renamer,
        out: impl std::io::Write + Send + 'static,
    ) -> Result<ZipReport, SpaceError> {
        let tree = self.tree.clone();
        let top = self.kind.folder_name();
        Ok(blocking(move || portal_files::zip_folder_as(&tree, &path, &top, &*rename, out)).await??)
    }

    /// Moves or copies `from` of this space into the folder `to_dir` of `dest` (this space or
    /// another one the user may change), keeping its name; a name taken there gets a number
    /// ("Übung 1 (2).pdf"), nothing is replaced. Returns the name it got.
    pub async fn transfer(
        &self,
        from: RelPath,
        dest: &Space,
        to_dir: RelPath,
        mode: Transfer,
    ) -> Result<Name, SpaceError> {
        dest.check_writable()?;
        if mode == Transfer::Move {
            self.check_writable()?;
        }
        let name = from.split_last().map(|(_, n)| n.clone()).ok_or(SpaceError::ReadOnly)?;
        let to = to_dir.join(name).map_err(FilesError::from)?;
        let same = self.dir == dest.dir;
        let (src, dst) = (self.tree.clone(), dest.tree.clone());
        let name = match mode {
            Transfer::Copy => {
                let limit = dest.write_limit().await?;
                blocking(move || {
                    if same {
                        src.copy(&from, &to, limit, OnClash::Number).map(|(n, _)| n)
                    } else {
                        portal_files::copy_between(&src, &from, &dst, &to, limit, OnClash::Number).map(|(n, _)| n)
                    }
                })
                .await??
            }
            Transfer::Move if same => blocking(move || src.rename(&from, &to, OnClash::Number)).await??,
            Transfer::Move => {
                // What moves in counts against the target's quota like an upload would.
                let limit = dest.write_limit().await?;
                blocking(move || {
                    let bytes = match src.stat(&from)?.kind {
                        portal_files::EntryKind::Dir => src.summary(&from)?.bytes,
                        _ => src.stat(&from)?.size,
                    };
                    if bytes > limit.bytes {
                        return Err(FilesError::TooLarge { limit });
                    }
                    src.move_between(&from, &dst, &to, limit, OnClash::Number)
                })
                .await??
            }
        };
        self.spaces.forget_usage(&self.dir);
        self.spaces.forget_usage(&dest.dir);
        Ok(name)
    }

    /// Some entries of the folder `dir` as one zip (a selection on the page).
    pub async fn zip_selection(
        &self,
        dir: RelPath,
        names: Vec<Name>,
        out: impl std::io::Write + Send + 'static,
    ) -> Result<ZipReport, SpaceError> {
        let tree = self.tree.clone();
        let top = dir
            .split_last()
            .map_or_else(|| self.kind.folder_name(), |(_, n)| n.to_string());
        Ok(blocking(move || portal_files::zip_selection(&tree, &dir, &names, &top, out)).await??)
    }

    /// Moves an entry into this space's trash (restorable for `trash_days`).
    pub async fn delete(&self, path: RelPath, now: i64) -> Result<TrashItem, SpaceError> {
        self.check_writable()?;
        if path.is_root() {
            return Err(SpaceError::ReadOnly);
        }
        let (tree, trash) = (self.tree.clone(), self.trash.clone());
        let item = blocking(move || trash.put(&tree, &path, now)).await??;
        self.spaces.forget_usage(&self.dir);
        Ok(item)
    }

    /// What is in the trash, newest first; items older than the retention are purged first.
    pub async fn trash(&self, now: i64) -> Result<Vec<TrashItem>, SpaceError> {
        let trash = self.trash.clone();
        let before = now - (self.spaces.trash_days as i64) * 86_400;
        Ok(blocking(move || {
            trash.purge(before)?;
            trash.list()
        })
        .await??)
    }

    /// Puts a trash item back where it was; returns where it went.
    pub async fn restore(&self, id: String) -> Result<RelPath, SpaceError> {
        self.check_writable()?;
        let (tree, trash) = (self.tree.clone(), self.trash.clone());
        Ok(blocking(move || trash.restore(&id, &tree)).await??)
    }
}

/// Several spaces as one zip, each under its folder name (`home`, `Abgaben/<title>`, …), on
/// the blocking pool: a user's "my data".
pub async fn zip_spaces(
    parts: Vec<(Space, String)>,
    out: impl std::io::Write + Send + 'static,
) -> Result<ZipReport, SpaceError> {
    Ok(blocking(move || {
        let trees: Vec<(&Tree, String)> = parts.iter().map(|(s, name)| (&*s.tree, name.clone())).collect();
        portal_files::zip_trees(&trees, out)
    })
    .await??)
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, SpaceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| SpaceError::Interrupted)
}
