//! A folder as one zip archive, written as it is read: nothing is held in memory beyond the
//! file being compressed, so a class's hand-ins or a student's whole home can be downloaded
//! whatever their size. Links and pipes inside are left out, never followed.

use std::io::{self, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::name::{MAX_DEPTH, Name, RelPath};
use crate::tree::{Entry, EntryKind, FilesError, Tree};

/// What went into an archive.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZipReport {
    pub files: u64,
    pub bytes: u64,
    /// Links, pipes and entries that vanished while the archive was written.
    pub skipped: u64,
}

/// Writes the folder `path` of `tree` to `out` as a zip whose entries sit in a folder named
/// like `path`'s last component (or `top` for a tree's root).
pub fn zip_folder(tree: &Tree, path: &RelPath, top: &str, out: impl Write) -> Result<ZipReport, FilesError> {
    zip_folder_as(tree, path, top, &|_| None, out)
}

/// As [`zip_folder`], with the folder's direct subfolders named by `rename` where it gives a
/// name (a class's hand-ins: one folder per student, named for people, stored by stable id).
pub fn zip_folder_as(
    tree: &Tree,
    path: &RelPath,
    top: &str,
    rename: &dyn Fn(&str) -> Option<String>,
    out: impl Write,
) -> Result<ZipReport, FilesError> {
    let mut zip = ZipWriter::new_stream(out);
    let top = path.split_last().map_or_else(|| top.to_owned(), |(_, n)| n.to_string());
    let mut report = ZipReport::default();
    add_folder(tree, path, &top, &mut zip, &mut report, 0, rename)?;
    zip.finish().map_err(zip_error)?;
    Ok(report)
}

/// Several trees in one archive, each whole under its own folder (`prefix`, which may have
/// several components): a user's "my data" — her home, hand-ins and feedback.
pub fn zip_trees(parts: &[(&Tree, String)], out: impl Write) -> Result<ZipReport, FilesError> {
    let mut zip = ZipWriter::new_stream(out);
    let mut report = ZipReport::default();
    for (tree, prefix) in parts {
        add_folder(tree, &RelPath::root(), prefix, &mut zip, &mut report, 0, &|_| None)?;
    }
    zip.finish().map_err(zip_error)?;
    Ok(report)
}

fn add_folder<W: Write>(
    tree: &Tree,
    path: &RelPath,
    prefix: &str,
    zip: &mut ZipWriter<zip::write::StreamWriter<W>>,
    report: &mut ZipReport,
    depth: usize,
    rename: &dyn Fn(&str) -> Option<String>,
) -> Result<(), FilesError> {
    if depth > MAX_DEPTH {
        report.skipped += 1;
        return Ok(());
    }
    zip.add_directory(format!("{prefix}/"), options(None))
        .map_err(zip_error)?;
    for entry in tree.list(path)? {
        let Ok(child) = Name::existing(&entry.name).and_then(|n| path.join(n)) else {
            report.skipped += 1;
            continue;
        };
        let shown = match (depth, entry.kind) {
            (0, EntryKind::Dir) => rename(&entry.name).unwrap_or_else(|| entry.name.clone()),
            _ => entry.name.clone(),
        };
        add_entry(
            tree,
            &child,
            entry.kind,
            &format!("{prefix}/{shown}"),
            zip,
            report,
            depth,
        )?;
    }
    Ok(())
}

/// One entry of a folder (or of a selection) at `name` in the archive.
fn add_entry<W: Write>(
    tree: &Tree,
    child: &RelPath,
    kind: EntryKind,
    name: &str,
    zip: &mut ZipWriter<zip::write::StreamWriter<W>>,
    report: &mut ZipReport,
    depth: usize,
) -> Result<(), FilesError> {
    match kind {
        EntryKind::Dir => add_folder(tree, child, name, zip, report, depth + 1, &|_| None)?,
        EntryKind::File => match tree.open_read(child) {
            Ok((mut file, entry)) => {
                zip.start_file(name, options(Some(&entry))).map_err(zip_error)?;
                report.bytes += io::copy(&mut file, zip)?;
                report.files += 1;
            }
            // Replaced by a link or removed meanwhile: left out, like links.
            Err(FilesError::NotFound | FilesError::Link | FilesError::NotAFile) => report.skipped += 1,
            Err(e) => return Err(e),
        },
        EntryKind::Link | EntryKind::Other => report.skipped += 1,
    }
    Ok(())
}

/// Some entries of the folder `dir` (a selection on the page) as one zip, inside a folder
/// named `top`. Names that are not there (any more) are counted as skipped.
pub fn zip_selection(
    tree: &Tree,
    dir: &RelPath,
    names: &[Name],
    top: &str,
    out: impl Write,
) -> Result<ZipReport, FilesError> {
    let mut zip = ZipWriter::new_stream(out);
    let mut report = ZipReport::default();
    zip.add_directory(format!("{top}/"), options(None)).map_err(zip_error)?;
    for name in names {
        let child = dir.join(name.clone())?;
        match tree.stat(&child) {
            Ok(entry) => add_entry(
                tree,
                &child,
                entry.kind,
                &format!("{top}/{name}"),
                &mut zip,
                &mut report,
                0,
            )?,
            Err(FilesError::NotFound) => report.skipped += 1,
            Err(e) => return Err(e),
        }
    }
    zip.finish().map_err(zip_error)?;
    Ok(report)
}

fn options(entry: Option<&Entry>) -> SimpleFileOptions {
    let mut options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        // The size is known from the listing, but a desktop may grow the file meanwhile.
        .large_file(entry.is_some_and(|e| e.size >= u64::from(u32::MAX) / 2));
    if let Some(time) = entry.and_then(|e| zip_time(e.modified)) {
        options = options.last_modified_time(time);
    }
    options
}

/// Unix seconds as a zip timestamp (UTC; the format has no zone).
fn zip_time(secs: i64) -> Option<DateTime> {
    let (y, m, d) = crate::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    DateTime::from_date_and_time(
        u16::try_from(y).ok()?,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
    .ok()
}

fn zip_error(e: zip::result::ZipError) -> FilesError {
    match e {
        zip::result::ZipError::Io(e) => FilesError::from(e),
        other => FilesError::Io(io::Error::other(other)),
    }
}
