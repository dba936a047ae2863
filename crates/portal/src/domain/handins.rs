//! Hand-ins after their due time, and hand-in folders in desktops.
//!
//! A desktop gets each hand-in folder of its student as a bind mount (`~/Abgaben/<title>`),
//! writable while the assignment is open. Docker cannot take a mount back from a running
//! container, so a desktop started before the due time keeps writing into its folder after it.
//! What counts is therefore not that folder but a copy: at the due time (the sealer wakes for
//! it; or the first request that needs it after the due time, whichever comes first) the portal
//! copies the assignment's hand-ins to `files.root/sealed/<id>`, which no desktop mounts
//! writable. From then on the teacher's view and zip, the student's own view and every desktop
//! started later (read-only) read that copy. Assignments that take late hand-ins are never
//! sealed: their folders stay open, and what changed after the due time is marked late.

use std::sync::Arc;
use std::time::Duration;

use desktop_runtime::BindMount;
use portal_files::{FilesError, Limit, LimitKind, Name, OnClash, RelPath, Tree};
use portal_store::{Assignment, AuditEvent, AuditKind, Role, Store, StoreError, User};
use tracing::{info, warn};

use super::audit;
use super::files::{FileSpaces, SpaceError, mount_name};
use super::unix_now;

/// The longest the sealer sleeps: an assignment set or moved meanwhile is noticed after this
/// (two small indexed queries each time).
const SEALER_NAP: i64 = 5;
/// Where hand-in folders appear in a desktop.
pub const HANDIN_MOUNTS: &str = "/home/kasm-user/Abgaben";
/// Where feedback folders appear in a desktop (read-only, live: new feedback shows at once).
pub const FEEDBACK_MOUNTS: &str = "/home/kasm-user/Rückmeldungen";

#[derive(Debug, thiserror::Error)]
pub enum HandinError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Files(#[from] SpaceError),
}

impl From<FilesError> for HandinError {
    fn from(e: FilesError) -> Self {
        HandinError::Files(SpaceError::Files(e))
    }
}

impl From<portal_files::NameError> for HandinError {
    fn from(e: portal_files::NameError) -> Self {
        FilesError::from(e).into()
    }
}

/// Seals assignments and says what a student's desktop mounts.
pub struct Handins {
    store: Store,
    files: Arc<FileSpaces>,
    /// One seal at a time: two requests after the due time must not copy twice.
    sealing: tokio::sync::Mutex<()>,
}

impl Handins {
    pub fn new(store: Store, files: Arc<FileSpaces>) -> Handins {
        Handins {
            store,
            files,
            sealing: tokio::sync::Mutex::new(()),
        }
    }

    /// The assignment `id` as it stands now: sealed first if its due time has passed.
    pub async fn current(&self, id: &str) -> Result<Option<Assignment>, HandinError> {
        let Some(a) = self.store.assignment(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.sealed_if_due(a).await?))
    }

    /// `a`, sealed if it is due and not sealed yet.
    pub async fn sealed_if_due(&self, a: Assignment) -> Result<Assignment, HandinError> {
        if a.open_at(unix_now()) || a.sealed_at.is_some() {
            return Ok(a);
        }
        let _one = self.sealing.lock().await;
        // Sealed (or moved) by someone else while this one waited.
        let a = self.store.assignment(&a.id).await?.ok_or(StoreError::NotFound)?;
        if a.open_at(unix_now()) || a.sealed_at.is_some() {
            return Ok(a);
        }
        let at = unix_now();
        let (live, sealed, owner) = (
            self.files.handins_dir(&a.id)?,
            self.files.sealed_dir(&a.id)?,
            self.files.owner(),
        );
        let id = a.id.clone();
        // A student's hand-in is sealed up to her quota: she can fill the live folder from
        // inside a desktop, where no portal limit applies, and the copy must not double that.
        let cap = self.files.quota_for(Role::Student).unwrap_or(u64::MAX / 2);
        let sealed_copy = tokio::task::spawn_blocking(move || seal(&live, &sealed, &id, owner, cap))
            .await
            .map_err(|_| SpaceError::Interrupted)??;
        self.store.mark_assignment_sealed(&a.id, at).await?;
        info!(
            assignment = %a.id,
            files = sealed_copy.files,
            bytes = sealed_copy.bytes,
            late_by_secs = at - a.due_at,
            "hand-ins sealed"
        );
        // The folders are home names; the audit log names people.
        let everyone = if sealed_copy.cut.is_empty() {
            Vec::new()
        } else {
            self.store.list_users().await?
        };
        for folder in &sealed_copy.cut {
            warn!(assignment = %a.id, student_folder = %folder, cap_bytes = cap, "a hand-in over the student quota was sealed only in part");
            let student = everyone.iter().find(|u| &u.home_name == folder);
            let mut event = AuditEvent::new(
                AuditKind::FilesChanged,
                format!(
                    "hand-in of assignment {:?} sealed only up to the student quota ({} MiB): the rest was not copied",
                    a.title,
                    cap >> 20
                ),
            );
            event.username = Some(student.map_or_else(|| folder.clone(), |u| u.username.clone()));
            event.target = Some(a.id.clone());
            audit::record(&self.store, event).await;
        }
        Ok(Assignment {
            sealed_at: Some(at),
            ..a
        })
    }

    /// Seals each assignment when its due time comes, for as long as the portal runs.
    pub async fn run_sealer(self: Arc<Self>) {
        loop {
            let now = unix_now();
            match self.store.assignments_to_seal(now).await {
                Ok(due) => {
                    for a in due {
                        let id = a.id.clone();
                        if let Err(e) = self.sealed_if_due(a).await {
                            warn!(assignment = %id, error = %e, "could not seal the hand-ins; trying again");
                        }
                    }
                }
                Err(e) => warn!(error = %e, "could not look for hand-ins to seal"),
            }
            let nap = match self.store.next_seal_due(now).await {
                Ok(Some(due)) => (due - unix_now()).clamp(0, SEALER_NAP),
                _ => SEALER_NAP,
            };
            // Wake just after the due time, so the copy is of what was there at it.
            tokio::time::sleep(Duration::from_millis(nap as u64 * 1000 + 200)).await;
        }
    }

    /// A student's hand-in folders for her desktop: one per assignment of her groups at
    /// `~/Abgaben/<title>`, writable while open, the sealed copy read-only after; and her
    /// feedback at `~/Rückmeldungen/<title>`, read-only. Teachers and administrators get none
    /// (they see hand-ins in the portal). An assignment that cannot be sealed now is left out
    /// rather than mounted writable after its due time.
    pub async fn desktop_binds(&self, user: &User) -> Vec<BindMount> {
        if user.role != Role::Student || Name::new(&user.home_name).is_err() {
            return Vec::new();
        }
        let assignments = match self.store.assignments_for_groups(&user.groups).await {
            Ok(a) => a,
            Err(e) => {
                warn!(user = %user.username, error = %e, "hand-in folders left out of the desktop");
                return Vec::new();
            }
        };
        let mut binds = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for a in assignments {
            let a = match self.sealed_if_due(a).await {
                Ok(a) => a,
                Err(e) => {
                    warn!(user = %user.username, error = %e, "a hand-in folder was left out of the desktop");
                    continue;
                }
            };
            let (Ok(source), Ok(feedback)) = (
                self.files.handin_source(&a, &user.home_name),
                self.files.feedback_dir(&a.id),
            ) else {
                continue;
            };
            let name = folder_name(&a, &mut taken);
            // The engine resolves nothing relative to the portal's working directory.
            let absolute = |p: std::path::PathBuf| std::path::absolute(&p).unwrap_or(p);
            let (source, feedback) = (absolute(source), absolute(feedback.join(&user.home_name)));
            binds.push(BindMount {
                source,
                target: format!("{HANDIN_MOUNTS}/{name}"),
                read_only: !a.open_at(unix_now()),
            });
            binds.push(BindMount {
                source: feedback,
                target: format!("{FEEDBACK_MOUNTS}/{name}"),
                read_only: true,
            });
        }
        binds
    }
}

/// An assignment's folder name for people (in desktops and in "my data"): its title made
/// safe for a path; a title already `taken` gets the id after it.
pub fn folder_name(a: &Assignment, taken: &mut std::collections::HashSet<String>) -> String {
    let name = mount_name(&a.title, &a.id);
    if taken.insert(name.clone()) {
        name
    } else {
        format!("{name} ({})", a.id)
    }
}

/// What a seal copied.
struct SealedCopy {
    files: u64,
    bytes: u64,
    /// Students' folders (home names) cut at the cap.
    cut: Vec<String>,
}

/// Copies every student's folder of `live` to `sealed` (replacing an older seal): first into a
/// hidden folder beside it, then renamed into place, so a half-done seal is never read. A
/// student's folder that cannot be copied whole (too deep, unreadable, over `cap` bytes) keeps
/// what could be copied; the others are sealed regardless.
fn seal(
    live: &std::path::Path,
    sealed: &std::path::Path,
    id: &str,
    owner: portal_files::Owner,
    cap: u64,
) -> Result<SealedCopy, HandinError> {
    let parent = sealed.parent().ok_or(FilesError::NotFound)?;
    let places = Tree::open(parent, Some(owner))?;
    let partial = RelPath::parse(&format!(".ird-seal-{id}"))?;
    let target = RelPath::parse(id)?;
    match places.remove(&partial) {
        Ok(()) | Err(FilesError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    // A reserved name, hidden from listings: opened (and made) as a tree of its own.
    let into = Tree::open(&parent.join(format!(".ird-seal-{id}")), Some(owner))?;
    let from = Tree::open(live, None)?;
    let per_student = Limit {
        bytes: cap,
        kind: LimitKind::Quota,
    };
    let mut cut = Vec::new();
    for entry in from.list(&RelPath::root())? {
        let (Ok(name), portal_files::EntryKind::Dir) = (Name::new(&entry.name), entry.kind) else {
            continue;
        };
        let path = RelPath::root().join(name)?;
        match portal_files::copy_between(&from, &path, &into, &path, per_student, OnClash::Fail) {
            Ok(_) => {}
            Err(FilesError::TooLarge { .. }) => cut.push(entry.name),
            Err(e) => {
                warn!(assignment = %id, student_folder = %entry.name, error = %e, "a hand-in was sealed only in part")
            }
        }
    }
    let summary = into.summary(&RelPath::root())?;
    match places.remove(&target) {
        Ok(()) | Err(FilesError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::rename(parent.join(format!(".ird-seal-{id}")), sealed).map_err(FilesError::from)?;
    Ok(SealedCopy {
        files: summary.files,
        bytes: summary.bytes,
        cut,
    })
}
