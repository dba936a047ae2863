//! Users' files, resolved only beneath a directory handle: a student controls what is in her
//! home (symlinks, hard links, renames while the portal works), so no operation here follows a
//! symlink or interprets a path as a string. See ARCHITECTURE.md, rule 11.
//!
//! Synchronous on purpose: every call is a few system calls on one file system; the portal
//! runs them on the blocking pool.

mod name;
mod trash;
mod tree;

pub use name::{MAX_DEPTH, MAX_NAME_BYTES, Name, NameError, RelPath};
pub use trash::{Trash, TrashItem};
pub use tree::{Entry, EntryKind, FilesError, Limit, LimitKind, OnClash, Owner, Tree};
