//! `import-flask`: the Flask version's files moved into the portal's file spaces. The layout
//! accepted (see README, "Moving over from the Flask version"):
//!
//! - `DIR/users/<IServ subject>/…` → that user's home. A subject nobody has signed in with yet
//!   gets an account made from it (a student without a password, named `flask-<subject>`);
//!   her first IServ sign-in finds it by subject, sets her real name, role and groups, and she
//!   sees her files.
//! - `DIR/shared/public/…` → the shared folder.
//! - `DIR/assignments/<group>/<folder>/…` → the class folder of `<group>` as a handout, when a
//!   member of the group has signed in (the portal knows the group); other groups are reported
//!   and skipped.
//!
//! Safe to run again: a file already there with the same content is left alone, one with
//! other content is a conflict, reported and never overwritten. Nothing in `DIR` is changed.
//! `DIR` is read through a directory handle, one component at a time without following links
//! (`portal_files::Tree`): a symbolic link anywhere below `DIR` is reported and skipped, so
//! nothing outside `DIR` is read.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use portal_files::{EntryKind, FilesError, Limit, LimitKind, Name, OnClash, Owner, RelPath, Tree};
use portal_store::{Store, StoreError};

use crate::domain::files::FileSpaces;

/// Why the import could not run (conflicts and skipped entries are not errors: they are in
/// the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: not a folder (give the Flask version's data folder, the one with users/ and shared/)")]
    NoData(PathBuf),
    #[error("{path}: {source}")]
    Files { path: String, source: FilesError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the import was interrupted")]
    Interrupted,
}

/// What an import did (or, with `--dry-run`, would do).
#[derive(Debug, Default)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Subjects an account was made for (no one had signed in with them yet).
    pub users_created: Vec<String>,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub folders_created: u64,
    /// Files that were there already with the same content.
    pub already_there: u64,
    /// Entries left alone because something else has their name in the target.
    pub conflicts: Vec<String>,
    /// Entries not imported, with the reason (links, unknown groups, names not allowed).
    pub skipped: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would be " } else { "" };
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        for s in &self.users_created {
            writeln!(
                f,
                "account {would}created for IServ subject {s} (gets the files at first sign-in)"
            )?;
        }
        writeln!(
            f,
            "{} files ({} bytes) {would}copied, {} folders {would}created, {} files already there",
            self.files_copied, self.bytes_copied, self.folders_created, self.already_there
        )?;
        if self.files_copied == 0 && self.folders_created == 0 && self.users_created.is_empty() {
            writeln!(f, "nothing to copy: everything is already there")?;
        }
        for c in &self.conflicts {
            writeln!(f, "conflict: {c}")?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        Ok(())
    }
}

/// One folder of `DIR` and where it goes.
struct Job {
    /// Below `DIR`.
    from: RelPath,
    /// The target tree's directory on the host.
    to: PathBuf,
    /// The target folder in that tree.
    to_path: RelPath,
    /// For the report: "home of alice", "shared folder", "class 7a".
    label: String,
}

/// Imports `data` into the file spaces; with `dry_run` only reports.
pub async fn import(
    store: &Store,
    spaces: &FileSpaces,
    data: &Path,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    if !data.is_dir() {
        return Err(ImportError::NoData(data.to_owned()));
    }
    let mut report = ImportReport {
        dry_run,
        ..ImportReport::default()
    };
    // `Tree::open` creates a missing folder; `data` exists, so it only opens it.
    let src = Tree::open(data, None).map_err(|source| ImportError::Files {
        path: data.display().to_string(),
        source,
    })?;
    let mut jobs = Vec::new();

    for (name, kind) in dirs_in(&src, "users", &mut report)? {
        if kind != EntryKind::Dir {
            continue;
        }
        let subject = name.to_string();
        let user = match store.user_by_subject(&subject).await? {
            Some(user) => Some(user),
            None => {
                report.users_created.push(subject.clone());
                if dry_run {
                    None
                } else {
                    Some(
                        store
                            .create_pending_external_user(&subject, &pending_username(&subject), &subject)
                            .await?,
                    )
                }
            }
        };
        let (to, label) = match &user {
            Some(u) => (spaces.home_dir(u), format!("home of {}", u.username)),
            // Dry run for a new account: its home does not exist, so everything would be copied.
            None => (PathBuf::new(), format!("home of IServ subject {subject}")),
        };
        jobs.push(Job {
            from: rel(&format!("users/{subject}"))?,
            to,
            to_path: RelPath::root(),
            label,
        });
    }

    match src.stat(&rel("shared/public")?) {
        Ok(e) if e.kind == EntryKind::Dir => jobs.push(Job {
            from: rel("shared/public")?,
            to: spaces.shared_dir(),
            to_path: RelPath::root(),
            label: "shared folder".into(),
        }),
        Ok(_) | Err(FilesError::Link) => report
            .skipped
            .push("shared/public: not a folder (a symbolic link is not followed)".into()),
        Err(FilesError::NotFound) => {}
        Err(e) => report.skipped.push(format!("shared/public: {e}")),
    }

    let known: BTreeSet<String> = store.list_users().await?.into_iter().flat_map(|u| u.groups).collect();
    for (group, kind) in dirs_in(&src, "assignments", &mut report)? {
        if kind != EntryKind::Dir {
            continue;
        }
        if !known.contains(group.as_str()) {
            report.skipped.push(format!(
                "assignments/{group}: unknown group (no member has signed in yet; run the import again later)"
            ));
            continue;
        }
        jobs.push(Job {
            from: rel(&format!("assignments/{group}"))?,
            to: spaces.class_dir(group.as_str()),
            to_path: RelPath::root(),
            label: format!("class {group}"),
        });
    }

    let owner = spaces.owner();
    tokio::task::spawn_blocking(move || {
        for job in &jobs {
            run_job(&src, job, owner, dry_run, &mut report)?;
        }
        Ok(report)
    })
    .await
    .map_err(|_| ImportError::Interrupted)?
}

/// The username of an account made for `subject`: `flask-<subject>` when that is a valid
/// username (IServ subjects are UUIDs), else `flask-` and a hash of it.
pub fn pending_username(subject: &str) -> String {
    let plain = subject.len() <= 56
        && subject
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if plain && !subject.is_empty() {
        return format!("flask-{subject}");
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(subject.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("flask-{hex}")
}

fn rel(s: &str) -> Result<RelPath, ImportError> {
    RelPath::parse(s).map_err(|e| ImportError::Files {
        path: s.to_owned(),
        source: e.into(),
    })
}

/// The entries of `DIR/<top>` (none when it is missing); links and odd names are reported.
fn dirs_in(src: &Tree, top: &str, report: &mut ImportReport) -> Result<Vec<(Name, EntryKind)>, ImportError> {
    let path = rel(top)?;
    let entries = match src.list(&path) {
        Ok(entries) => entries,
        Err(FilesError::NotFound) => return Ok(Vec::new()),
        Err(FilesError::Link) => {
            report.skipped.push(format!("{top}: a symbolic link, not followed"));
            return Ok(Vec::new());
        }
        Err(source) => {
            return Err(ImportError::Files {
                path: top.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in entries {
        match (Name::new(&e.name), e.kind) {
            (Ok(name), EntryKind::Dir) => out.push((name, EntryKind::Dir)),
            (_, EntryKind::Link) => report
                .skipped
                .push(format!("{top}/{}: a symbolic link, not followed", e.name)),
            (Err(err), _) => report.skipped.push(format!("{top}/{}: {err}", e.name)),
            (Ok(_), _) => report.skipped.push(format!("{top}/{}: not a folder", e.name)),
        }
    }
    Ok(out)
}

fn run_job(src: &Tree, job: &Job, owner: Owner, dry_run: bool, report: &mut ImportReport) -> Result<(), ImportError> {
    let fail = |path: &RelPath| {
        let path = path.to_string();
        move |source| ImportError::Files { path, source }
    };
    // A dry run opens (and so creates) nothing: a missing target is simply empty.
    let dst = if (dry_run && !job.to.is_dir()) || job.to.as_os_str().is_empty() {
        None
    } else {
        Some(Tree::open(&job.to, (!dry_run).then_some(owner)).map_err(fail(&job.from))?)
    };
    copy_dir(src, &job.from, dst.as_ref(), &job.to_path, job, dry_run, report, 0)
}

#[allow(clippy::too_many_arguments)]
fn copy_dir(
    src: &Tree,
    from: &RelPath,
    dst: Option<&Tree>,
    to: &RelPath,
    job: &Job,
    dry_run: bool,
    report: &mut ImportReport,
    depth: usize,
) -> Result<(), ImportError> {
    let fail = |path: &RelPath| {
        let path = path.to_string();
        move |source| ImportError::Files { path, source }
    };
    if depth > portal_files::MAX_DEPTH {
        report.skipped.push(format!("{from}: nested too deep"));
        return Ok(());
    }
    for entry in src.list(from).map_err(fail(from))? {
        let name = match Name::new(&entry.name) {
            Ok(name) => name,
            Err(e) => {
                report.skipped.push(format!("{from}/{}: {e}", entry.name));
                continue;
            }
        };
        let src_path = from.join(name.clone()).map_err(|e| fail(from)(e.into()))?;
        let dst_path = to.join(name).map_err(|e| fail(from)(e.into()))?;
        let shown = format!("{src_path} → {}: {dst_path}", job.label);
        let existing = match dst.map(|d| d.stat(&dst_path)) {
            None | Some(Err(FilesError::NotFound)) => None,
            Some(Ok(e)) => Some(e.kind),
            Some(Err(e)) => {
                report.conflicts.push(format!("{shown}: {e}"));
                continue;
            }
        };
        match (entry.kind, existing) {
            (EntryKind::Link, _) => report
                .skipped
                .push(format!("{src_path}: a symbolic link, not followed")),
            (EntryKind::Other, _) => report.skipped.push(format!("{src_path}: not a file or folder")),
            (EntryKind::Dir, None) => {
                report.folders_created += 1;
                if let (false, Some(d)) = (dry_run, dst) {
                    d.mkdir(&dst_path).map_err(fail(&src_path))?;
                }
                copy_dir(
                    src,
                    &src_path,
                    dst.filter(|_| !dry_run),
                    &dst_path,
                    job,
                    dry_run,
                    report,
                    depth + 1,
                )?;
            }
            (EntryKind::Dir, Some(EntryKind::Dir)) => {
                copy_dir(src, &src_path, dst, &dst_path, job, dry_run, report, depth + 1)?;
            }
            (EntryKind::File, None) => {
                report.files_copied += 1;
                report.bytes_copied += entry.size;
                if let (false, Some(d)) = (dry_run, dst) {
                    let (mut file, _) = src.open_read(&src_path).map_err(fail(&src_path))?;
                    let limit = Limit {
                        bytes: u64::MAX,
                        kind: LimitKind::Upload,
                    };
                    d.write(&dst_path, &mut file, limit, OnClash::Fail)
                        .map_err(fail(&src_path))?;
                }
            }
            (EntryKind::File, Some(EntryKind::File)) => {
                let d = dst.ok_or(ImportError::Interrupted)?;
                if same_content(src, &src_path, d, &dst_path).map_err(fail(&src_path))? {
                    report.already_there += 1;
                } else {
                    report.conflicts.push(format!(
                        "{shown}: exists with other content, left as it is (not overwritten)"
                    ));
                }
            }
            (_, Some(_)) => report
                .conflicts
                .push(format!("{shown}: something else has this name there, left as it is")),
        }
    }
    Ok(())
}

/// Whether two files hold the same bytes.
fn same_content(a: &Tree, a_path: &RelPath, b: &Tree, b_path: &RelPath) -> Result<bool, FilesError> {
    let (mut fa, ea) = a.open_read(a_path)?;
    let (mut fb, eb) = b.open_read(b_path)?;
    if ea.size != eb.size {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pending_accounts_are_named_by_subject_or_its_hash() {
        let uuid = "0f8e2c3a-1b2c-4d5e-8f90-123456789abc";
        assert_eq!(pending_username(uuid), format!("flask-{uuid}"));
        for odd in ["Anna@IServ", "", "../x", &"a".repeat(80)] {
            let name = pending_username(odd);
            assert!(name.starts_with("flask-") && name.len() == 30, "{odd:?} → {name}");
        }
    }
}
