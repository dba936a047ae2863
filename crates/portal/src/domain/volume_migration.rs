//! Moving homes out of Docker volumes into the files root. Versions before homes were folders
//! of the files root kept each home in a volume `{docker.home_volume_prefix}{home name}` and
//! the shared folder in `docker.shared_volume`. Their content is copied to
//! `files.root/homes/<home name>` and `files.root/shared`: once at the first start (a marker
//! file records it) and whenever an administrator runs `iserv-remote-desktop migrate-volumes`.
//!
//! Nothing existing is overwritten (a different file of the same name is a conflict in the
//! report), nothing is deleted: the volumes stay until the administrator removes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Buf as _, Bytes};
use desktop_runtime::{ContainerRuntime, RuntimeError};
use portal_files::{Owner, UnpackOptions, UnpackReport};
use portal_store::{Store, StoreError};

use crate::config::Config;

/// In the files root: written after a start-up migration without errors, holding its report.
pub const MARKER: &str = ".ird-volumes-migrated";

/// Why the migration could not run at all (a single volume's failure is in its report).
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(
        "no desktop image is on the Docker engine to read the volumes with (the portal creates a container from one, never starts it): \
         pull one of the desktop types' images first (Administration → desktop types, or `docker pull IMAGE`)"
    )]
    NoImage,
    #[error("writing {path}: {source}")]
    Marker { path: PathBuf, source: std::io::Error },
}

/// What happened to one volume.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VolumeOutcome {
    pub volume: String,
    /// Whose home it was (username), or `shared` for the shared folder.
    pub owner: String,
    /// Where its content went, relative to the files root.
    pub target: String,
    pub copied: Option<UnpackReport>,
    pub error: Option<String>,
}

/// What one run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrationReport {
    pub dry_run: bool,
    pub files_root: PathBuf,
    pub volumes: Vec<VolumeOutcome>,
    /// Volumes with the home prefix that no account (not even a deleted one) has: left alone.
    pub skipped: Vec<String>,
}

impl MigrationReport {
    /// Nothing was (or would be) copied and nothing failed: a run after a complete one.
    pub fn nothing_to_do(&self) -> bool {
        self.volumes
            .iter()
            .all(|v| v.error.is_none() && v.copied.as_ref().is_none_or(|c| !c.changed_anything()))
    }

    pub fn failed(&self) -> bool {
        self.volumes.iter().any(|v| v.error.is_some())
    }

    /// For the console and the log: a line per volume, conflicts by path, and how to remove
    /// the volumes once the homes are checked.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Homes from Docker volumes into {}{}",
            self.files_root.display(),
            if self.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        );
        if self.volumes.is_empty() && self.skipped.is_empty() {
            let _ = writeln!(out, "No home volumes found: nothing to move.");
            return out;
        }
        for v in &self.volumes {
            match (&v.copied, &v.error) {
                (_, Some(error)) => {
                    let _ = writeln!(out, "  {} → {} ({}): FAILED: {error}", v.volume, v.target, v.owner);
                }
                (Some(c), None) => {
                    let _ = writeln!(
                        out,
                        "  {} → {} ({}): {} {} ({} bytes), {} folders, {} links{}; {} already there",
                        v.volume,
                        v.target,
                        v.owner,
                        c.files,
                        if self.dry_run { "files to copy" } else { "files copied" },
                        c.bytes,
                        c.dirs,
                        c.links,
                        if c.conflicts.is_empty() {
                            String::new()
                        } else {
                            format!(", {} conflicts", c.conflicts.len())
                        },
                        c.unchanged
                    );
                    for path in &c.conflicts {
                        let _ = writeln!(
                            out,
                            "      conflict: {path} (a different one is in the home already; kept, the volume's is still in the volume)"
                        );
                    }
                    for why in &c.refused {
                        let _ = writeln!(out, "      not copied: {why}");
                    }
                    if c.more_unlisted > 0 {
                        let _ = writeln!(out, "      … and {} more not listed", c.more_unlisted);
                    }
                }
                (None, None) => {}
            }
        }
        for volume in &self.skipped {
            let _ = writeln!(out, "  {volume}: skipped, no account has this home");
        }
        if self.nothing_to_do() {
            let _ = writeln!(
                out,
                "Nothing to do: every volume's content is in the files root already."
            );
        }
        let names: Vec<&str> = self.volumes.iter().map(|v| v.volume.as_str()).collect();
        if !names.is_empty() && !self.dry_run {
            let _ = writeln!(
                out,
                "The volumes are kept. Once you have checked the homes, remove them with:\n  docker volume rm {}",
                names.join(" ")
            );
        }
        out
    }
}

/// Copies every home volume (and the shared volume) into the files root; with `dry_run` only
/// counts. Safe to run again: what arrived before is recognised and left as it is.
pub async fn migrate(
    store: &Store,
    runtime: &dyn ContainerRuntime,
    config: &Config,
    dry_run: bool,
) -> Result<MigrationReport, MigrationError> {
    let root = super::desktop_mounts::files_root(config);
    let mut report = MigrationReport {
        dry_run,
        files_root: root.clone(),
        ..Default::default()
    };
    if !runtime.starts_desktops() {
        return Ok(report);
    }
    let docker = &config.docker;
    // Volume name → (whose, where). Deleted accounts too: they may be restored.
    let mut homes: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    let deleted = store.deleted_users().await?;
    let accounts = store.list_users().await?;
    for (username, home_name) in accounts
        .iter()
        .map(|u| (&u.username, &u.home_name))
        .chain(deleted.iter().map(|d| (&d.username, &d.home_name)))
    {
        // A home name is one path component by construction; anything else is left alone
        // rather than joined into a path.
        if portal_files::Name::existing(home_name).is_err() {
            continue;
        }
        homes.insert(
            super::accounts::home_volume(&docker.home_volume_prefix, home_name),
            (username.clone(), super::desktop_mounts::home_dir_in(&root, home_name)),
        );
    }
    let mut todo: Vec<(String, String, PathBuf)> = Vec::new();
    if !docker.home_volume_prefix.is_empty() {
        for volume in runtime.volumes(&docker.home_volume_prefix).await? {
            match homes.get(&volume) {
                Some((username, dir)) => todo.push((volume, username.clone(), dir.clone())),
                None => report.skipped.push(volume),
            }
        }
    }
    if !docker.shared_volume.is_empty()
        && runtime
            .volumes(&docker.shared_volume)
            .await?
            .contains(&docker.shared_volume)
    {
        todo.push((
            docker.shared_volume.clone(),
            "shared".to_owned(),
            super::desktop_mounts::shared_dir_in(&root),
        ));
    }
    if todo.is_empty() {
        return Ok(report);
    }
    let image = reader_image(store, runtime).await?;
    let owner = Owner {
        uid: config.files.uid,
        gid: config.files.gid,
    };
    for (volume, username, dir) in todo {
        let target = dir.strip_prefix(&root).unwrap_or(&dir).display().to_string();
        tracing::info!(%volume, %target, dry_run, "moving a home volume into the files root");
        let outcome = match copy_volume(runtime, &volume, &image, &dir, owner, dry_run).await {
            Ok(copied) => VolumeOutcome {
                volume,
                owner: username,
                target,
                copied: Some(copied),
                error: None,
            },
            Err(error) => VolumeOutcome {
                volume,
                owner: username,
                target,
                copied: None,
                error: Some(error),
            },
        };
        if !dry_run {
            audit(store, &outcome).await;
        }
        report.volumes.push(outcome);
    }
    Ok(report)
}

/// Runs [`migrate`] unless the marker says a start did so before; writes the marker when no
/// volume failed (a failed one is tried again on the next start). `None`: done before.
pub async fn migrate_once(
    store: &Store,
    runtime: &dyn ContainerRuntime,
    config: &Config,
) -> Result<Option<MigrationReport>, MigrationError> {
    let marker = config.files_root().join(MARKER);
    if marker.exists() || !runtime.starts_desktops() {
        return Ok(None);
    }
    let report = migrate(store, runtime, config, false).await?;
    if !report.failed() {
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(config.files_root())?;
            std::fs::write(path, report.render())
        };
        write(&marker).map_err(|source| MigrationError::Marker { path: marker, source })?;
    }
    Ok(Some(report))
}

/// An audit entry for a volume that was copied (or failed), under its owner's name; a run
/// that found everything in place writes none.
async fn audit(store: &Store, v: &VolumeOutcome) {
    let detail = match (&v.copied, &v.error) {
        (_, Some(error)) => format!("copying the home volume {} into {} failed: {error}", v.volume, v.target),
        (Some(c), None) if c.changed_anything() || !c.conflicts.is_empty() => format!(
            "home volume {} copied into {}: {} files ({} bytes), {} folders, {} links; {} conflicts kept as they were",
            v.volume,
            v.target,
            c.files,
            c.bytes,
            c.dirs,
            c.links,
            c.conflicts.len()
        ),
        _ => return,
    };
    let mut event = portal_store::AuditEvent::new(portal_store::AuditKind::FilesChanged, detail);
    if v.target.starts_with("homes") {
        event = event.user(&v.owner);
    }
    super::audit::record(store, event).await;
}

/// One volume's content into `dir`: the engine streams it as tar, a blocking task unpacks it.
async fn copy_volume(
    runtime: &dyn ContainerRuntime,
    volume: &str,
    image: &str,
    dir: &Path,
    owner: Owner,
    dry_run: bool,
) -> Result<UnpackReport, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let opts = UnpackOptions {
        strip: 1,
        owner,
        dry_run,
    };
    let target = dir.to_owned();
    let unpack = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            chunk: Bytes::new(),
        };
        // Dropping the reader when done (or failed) tells the engine's side to stop sending.
        portal_files::unpack_tar(&target, &mut reader, &opts)
    });
    let read = runtime.read_volume(volume, image, tx).await;
    let unpacked = unpack.await.map_err(|_| "the copy was interrupted".to_owned())?;
    read.map_err(|e| e.to_string())?;
    unpacked.map_err(|e| e.to_string())
}

/// A local image to create the (never started) reader container from: a desktop type's.
async fn reader_image(store: &Store, runtime: &dyn ContainerRuntime) -> Result<String, MigrationError> {
    let mut images: Vec<String> = store.list_desktop_types().await?.into_iter().map(|t| t.image).collect();
    images.push(super::catalog::LOCAL_DEBIAN_IMAGE.to_owned());
    for image in images {
        if runtime.has_image(&image).await? {
            return Ok(image);
        }
    }
    Err(MigrationError::NoImage)
}

/// Reads the chunks the engine sends, on the blocking pool.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}
