//! Users' files, resolved only beneath a directory handle: a student controls what is in her
//! home (symlinks, hard links, renames while the portal works), so no operation here follows a
//! symlink or interprets a path as a string. See ARCHITECTURE.md, rule 11.
//!
//! Synchronous on purpose: every call is a few system calls on one file system; the portal
//! runs them on the blocking pool.

mod name;
mod ownership;
mod source;
mod trash;
mod tree;
mod unpack;
mod zip;

pub use name::{MAX_DEPTH, MAX_NAME_BYTES, Name, NameError, RelPath};
pub use ownership::{OwnershipError, check_sharing};
pub use source::{Source, write_all_vectored};
pub use trash::{Trash, TrashItem};
pub use tree::{Entry, EntryKind, FilesError, Limit, LimitKind, OnClash, Owner, Summary, Tree, copy_between};
pub use unpack::{UnpackOptions, UnpackReport, unpack_tar};
pub use zip::{ZipReport, zip_folder, zip_folder_as, zip_selection, zip_trees};

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`): for dates in listings and archives without a calendar crate.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
