//! What a desktop mounts from the files root — the user's home at `/home/kasm-user` (the same
//! folder `/files` shows as "My files") and the school's shared folder — and getting those
//! folders ready, owned by the desktop's user, before the engine mounts them. Also the
//! start-up check that this portal may share files with that user at all.

use std::path::{Path, PathBuf};

use desktop_runtime::BindMount;
use portal_files::{FilesError, Owner, RelPath, Tree};
use portal_store::{Role, User};

use crate::config::Config;

/// The desktop user's home in Kasm images.
pub const HOME_TARGET: &str = "/home/kasm-user";

/// Why desktops cannot get their folders from the files root.
#[derive(Debug, thiserror::Error)]
pub enum MountsError {
    #[error(
        "files.root {0:?} cannot be mounted into desktops: Docker's mount syntax does not allow ',' or ':' in a path, nor a line break"
    )]
    Unmountable(PathBuf),
    #[error(
        "files.uid/files.gid: {0}. Desktops mount homes from files.root, so every file there must belong to the desktop user: \
         run the portal with the capabilities CAP_CHOWN and CAP_DAC_OVERRIDE (deploy/systemd/iserv-remote-desktop.service, \
         deploy/compose.yaml do) or as that user — see docs/deployment.en.md, \"Files and ownership\""
    )]
    Ownership(#[source] portal_files::OwnershipError),
    #[error(
        "files.root {0:?} is not usable for desktops on a swarm: {1}. It must be storage that every node mounts at the \
         same path (NFS, CephFS) — see docs/deployment.en.md, \"Desktops on Docker Swarm\""
    )]
    SharedStorage(PathBuf, String),
    #[error("preparing the folders of a desktop under files.root failed: {0}")]
    Files(#[from] FilesError),
    #[error("the file operation was interrupted")]
    Interrupted,
}

/// The files root as an absolute path: the engine resolves mount sources on its own, not in
/// the portal's working directory.
pub fn files_root(config: &Config) -> PathBuf {
    let root = config.files_root();
    std::path::absolute(&root).unwrap_or(root)
}

/// Where `home_name`'s home lives under the files root.
pub fn home_dir_in(root: &Path, home_name: &str) -> PathBuf {
    root.join("homes").join(home_name)
}

/// The school's shared folder under the files root.
pub fn shared_dir_in(root: &Path) -> PathBuf {
    root.join("shared")
}

/// The user's home (read-write) and, unless `docker.shared_mount` is empty, the shared folder
/// (read-only for students; teachers and administrators hand out material there).
pub fn home_and_shared(config: &Config, user: &User) -> Vec<BindMount> {
    let root = files_root(config);
    let mut binds = vec![BindMount {
        source: home_dir_in(&root, &user.home_name),
        target: HOME_TARGET.to_owned(),
        read_only: false,
    }];
    if !config.docker.shared_mount.is_empty() {
        binds.push(BindMount {
            source: shared_dir_in(&root),
            target: config.docker.shared_mount.clone(),
            read_only: user.role == Role::Student,
        });
    }
    binds
}

/// Creates every bind source (Docker refuses a missing one) and, inside the home, the folders
/// the other mounts appear at, all owned by the desktop's user: left to the engine, mount
/// points would be made root's, in the user's own home.
pub async fn prepare(binds: &[BindMount], owner: Owner) -> Result<(), MountsError> {
    let sources: Vec<PathBuf> = binds.iter().map(|b| b.source.clone()).collect();
    let home = binds.iter().find(|b| b.target == HOME_TARGET).map(|b| b.source.clone());
    let inside: Vec<String> = binds
        .iter()
        .filter_map(|b| b.target.strip_prefix(HOME_TARGET)?.strip_prefix('/').map(str::to_owned))
        .collect();
    tokio::task::spawn_blocking(move || {
        for dir in &sources {
            Tree::open(dir, Some(owner))?;
        }
        if let Some(home) = home {
            let tree = Tree::open(&home, Some(owner))?;
            for rel in inside {
                mount_point(&tree, &rel);
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| MountsError::Interrupted)?
}

/// Makes the folders of `rel` in the home, each step only if missing. A name the user put in
/// the way (a file, a link) stays: the engine resolves the mount point inside the container,
/// never on the host, so the worst is a desktop whose folder is mounted elsewhere.
fn mount_point(home: &Tree, rel: &str) {
    let Ok(path) = RelPath::parse(rel) else { return };
    let mut at = RelPath::root();
    for name in path.names() {
        let Ok(next) = at.join(name.clone()) else { return };
        at = next;
        match home.mkdir(&at) {
            Ok(()) | Err(FilesError::Exists) => {}
            Err(e) => {
                tracing::warn!(mount_point = %rel, error = %e, "could not prepare a mount point in a home; the engine makes it");
                return;
            }
        }
    }
}

/// At start, when desktops run on a swarm: the files root exists already and is a folder
/// this process can write. On a swarm it must be storage every node mounts at the same path
/// (NFS, CephFS); the portal does not create it, which would hide a missing mount here.
pub fn check_shared_storage(config: &Config) -> Result<(), MountsError> {
    let root = files_root(config);
    match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(MountsError::SharedStorage(root, "it is not a folder".to_owned())),
        Err(e) => return Err(MountsError::SharedStorage(root, format!("it cannot be read: {e}"))),
    }
    // Writable: a file made and removed again (permission bits say little on NFS).
    let probe = root.join(format!(".ird-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| MountsError::SharedStorage(root, format!("the portal cannot write there: {e}")))
}

/// At start, when desktops run on Docker: the files root can be mounted, and this process
/// can give files to the desktop user and write into her folders. Refused otherwise, with
/// what to change.
pub fn check_at_start(config: &Config) -> Result<(), MountsError> {
    let root = files_root(config);
    let text = root.to_str().unwrap_or_default();
    if text.is_empty() || text.contains([',', ':', '\n']) {
        return Err(MountsError::Unmountable(root));
    }
    let owner = Owner {
        uid: config.files.uid,
        gid: config.files.gid,
    };
    portal_files::check_sharing(&root, owner).map_err(|e| match e {
        portal_files::OwnershipError::Files(f) => MountsError::Files(f),
        other => MountsError::Ownership(other),
    })
}
