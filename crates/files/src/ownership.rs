//! Whether this process can share files with the desktop user: give what it writes to her
//! (`CAP_CHOWN`, or being her) and write into folders she made (`CAP_DAC_OVERRIDE`, or being
//! her). Desktops mount homes from the files root, so a portal that cannot do both would
//! leave homes the desktop cannot write, or files the portal cannot change.

use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::tree::{FilesError, Owner, Tree};

/// What this process lacks.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("this process (uid {uid}) may not write into {path}")]
    CannotWriteRoot { uid: u32, path: String },
    #[error(
        "this process (uid {uid}) may not give files to {owner_uid}:{owner_gid} (it needs CAP_CHOWN, or to run as that user)"
    )]
    CannotGiveAway { uid: u32, owner_uid: u32, owner_gid: u32 },
    #[error(
        "this process (uid {uid}) may not write into folders of {owner_uid} (it needs CAP_DAC_OVERRIDE, or to run as that user)"
    )]
    CannotWriteTheirs { uid: u32, owner_uid: u32 },
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// Tries both in a scratch folder under `dir` (created if missing) and cleans up after itself.
pub fn check_sharing(dir: &Path, owner: Owner) -> Result<(), OwnershipError> {
    let uid = rustix::process::geteuid().as_raw();
    let tree = match Tree::open(dir, None) {
        Ok(tree) => tree,
        Err(FilesError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(OwnershipError::CannotWriteRoot {
                uid,
                path: dir.display().to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let root = tree.root_fd();
    let probe = format!(".ird-ownership-check-{:016x}", rand::random::<u64>());
    match rustix::fs::mkdirat(root, probe.as_str(), Mode::from_raw_mode(0o755)) {
        Ok(()) => {}
        Err(Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
            return Err(OwnershipError::CannotWriteRoot {
                uid,
                path: dir.display().to_string(),
            });
        }
        Err(e) => return Err(FilesError::from(e).into()),
    }
    let result = (|| {
        let made = rustix::fs::openat(
            root,
            probe.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(FilesError::from)?;
        let ids = (
            rustix::fs::Uid::from_raw(owner.uid),
            rustix::fs::Gid::from_raw(owner.gid),
        );
        match rustix::fs::fchown(&made, Some(ids.0), Some(ids.1)) {
            Ok(()) => {}
            Err(Errno::PERM) => {
                return Err(OwnershipError::CannotGiveAway {
                    uid,
                    owner_uid: owner.uid,
                    owner_gid: owner.gid,
                });
            }
            Err(e) => return Err(FilesError::from(e).into()),
        }
        match rustix::fs::openat(
            &made,
            "probe",
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(_) => {
                let _ = rustix::fs::unlinkat(&made, "probe", AtFlags::empty());
                Ok(())
            }
            Err(Errno::ACCESS | Errno::PERM) => Err(OwnershipError::CannotWriteTheirs {
                uid,
                owner_uid: owner.uid,
            }),
            Err(e) => Err(FilesError::from(e).into()),
        }
    })();
    let _ = rustix::fs::unlinkat(root, probe.as_str(), AtFlags::REMOVEDIR);
    result
}
