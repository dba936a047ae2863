//! How much of the files root each user and each class takes, for the administrators. Walking
//! every tree takes a while on a school's disk, so it runs on the blocking pool, one walk at
//! a time, and its result is kept for a minute: a page that asks again meanwhile, or while a
//! walk runs, gets that walk's result.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portal_files::Tree;
use portal_store::{Role, Store, StoreError};

use super::files::{FileSpaces, SpaceError, class_dir_in};
use super::unix_now;

/// How long a computed report is shown before it is computed again.
const FRESH: Duration = Duration::from_secs(60);

/// One user's share: her home (with its trash) and her live hand-ins.
#[derive(Debug, Clone)]
pub struct UserUse {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub home: u64,
    pub handins: u64,
    /// What her role's quota allows in her home; `None`: no quota.
    pub quota: Option<u64>,
}

impl UserUse {
    pub fn total(&self) -> u64 {
        self.home + self.handins
    }
}

/// One class's share: its folder (with its trash), and its assignments' hand-ins, sealed
/// copies and feedback.
#[derive(Debug, Clone)]
pub struct ClassUse {
    pub group: String,
    pub folder: u64,
    pub handins: u64,
}

impl ClassUse {
    pub fn total(&self) -> u64 {
        self.folder + self.handins
    }
}

/// Every user and class, largest first.
#[derive(Debug, Clone)]
pub struct DiskReport {
    /// Unix seconds.
    pub computed_at: i64,
    pub users: Vec<UserUse>,
    pub classes: Vec<ClassUse>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiskUseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Files(#[from] SpaceError),
}

/// The last report and the lock that makes walks one at a time.
#[derive(Default)]
pub struct DiskUse {
    last: tokio::sync::Mutex<Option<(Instant, Arc<DiskReport>)>>,
}

impl DiskUse {
    /// A report at most a minute old.
    pub async fn report(&self, store: &Store, files: &Arc<FileSpaces>) -> Result<Arc<DiskReport>, DiskUseError> {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(report.clone());
        }
        let users = store.list_users().await?;
        let assignments = store.all_assignments().await?;
        let files = files.clone();
        let report = tokio::task::spawn_blocking(move || {
            let root = files.root();
            let mut handins_of: HashMap<String, u64> = HashMap::new();
            let mut class_handins: HashMap<String, u64> = HashMap::new();
            for a in &assignments {
                let live = root.join("handins").join(&a.id);
                for (home, bytes) in per_folder(&live) {
                    *handins_of.entry(home).or_default() += bytes;
                }
                let bytes =
                    usage(&live) + usage(&root.join("sealed").join(&a.id)) + usage(&root.join("feedback").join(&a.id));
                *class_handins.entry(a.group_name.clone()).or_default() += bytes;
            }
            let mut out_users: Vec<UserUse> = users
                .iter()
                .map(|u| UserUse {
                    username: u.username.clone(),
                    display_name: u.display_name.clone(),
                    role: u.role,
                    home: usage(&root.join("homes").join(&u.home_name))
                        + usage(&root.join("trash/homes").join(&u.home_name)),
                    handins: handins_of.get(&u.home_name).copied().unwrap_or(0),
                    quota: files.quota_for(u.role),
                })
                .collect();
            let groups: BTreeSet<&String> = users
                .iter()
                .flat_map(|u| u.groups.iter())
                .chain(assignments.iter().map(|a| &a.group_name))
                .collect();
            let mut out_classes: Vec<ClassUse> = groups
                .into_iter()
                .map(|g| {
                    let folder = class_dir_in(root, g);
                    let trash = folder
                        .file_name()
                        .map(|key| usage(&root.join("trash/classes").join(key)))
                        .unwrap_or(0);
                    ClassUse {
                        group: g.clone(),
                        folder: usage(&folder) + trash,
                        handins: class_handins.get(g).copied().unwrap_or(0),
                    }
                })
                .collect();
            out_users.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.username.cmp(&b.username)));
            out_classes.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.group.cmp(&b.group)));
            DiskReport {
                computed_at: unix_now(),
                users: out_users,
                classes: out_classes,
            }
        })
        .await
        .map_err(|_| SpaceError::Interrupted)?;
        let report = Arc::new(report);
        *last = Some((Instant::now(), report.clone()));
        Ok(report)
    }
}

/// Bytes in regular files under `dir`; 0 when it does not exist (nothing is created).
fn usage(dir: &Path) -> u64 {
    if !dir.is_dir() {
        return 0;
    }
    Tree::open(dir, None).and_then(|t| t.usage()).unwrap_or(0)
}

/// Bytes per direct subfolder of `dir` (an assignment's hand-ins: one per student's home).
fn per_folder(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        // `file_type` does not follow links: a link a desktop put here is not walked.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, usage(&e.path()))))
        .collect()
}
