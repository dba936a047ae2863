//! Names and relative paths of user files: one component at a time, never a string check on a
//! whole path. A path is only ever resolved component by component beneath a directory handle
//! (see `tree.rs`); this module only decides which components are acceptable at all.

use std::fmt;

/// Longest name in bytes: what Linux file systems store in one directory entry.
pub const MAX_NAME_BYTES: usize = 255;
/// Deepest path the portal walks; deeper trees stay usable inside the desktop.
pub const MAX_DEPTH: usize = 64;
/// Prefix of the portal's own temporary entries (uploads in progress). Hidden from listings and
/// refused as a new name, so a user cannot collide with them.
pub(crate) const RESERVED_PREFIX: &str = ".ird-";

/// Why a name or path was refused. Each variant says what a person can change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name must not be empty")]
    Empty,
    #[error("\".\" and \"..\" are not names")]
    Dot,
    #[error("a name must not contain \"/\"")]
    Slash,
    #[error("a name must not contain a NUL byte")]
    Nul,
    #[error("a new name must not contain control characters such as line breaks")]
    Control,
    #[error("a name may be at most {MAX_NAME_BYTES} bytes long (UTF-8)")]
    TooLong,
    #[error("names starting with \"{RESERVED_PREFIX}\" are reserved for the portal")]
    Reserved,
    #[error("a path may be at most {MAX_DEPTH} folders deep")]
    TooDeep,
}

/// One path component that can address an existing entry. Anything a desktop can create is
/// addressable (line breaks included), except what no file system entry can be called.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// A component naming an entry that may already exist (as a listing shows it).
    pub fn existing(s: &str) -> Result<Name, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s == "." || s == ".." {
            return Err(NameError::Dot);
        }
        if s.contains('/') {
            return Err(NameError::Slash);
        }
        if s.contains('\0') {
            return Err(NameError::Nul);
        }
        if s.len() > MAX_NAME_BYTES {
            return Err(NameError::TooLong);
        }
        Ok(Name(s.to_owned()))
    }

    /// A component for an entry the portal creates: additionally no control characters (a
    /// line break in a name breaks scripts and log lines) and not the portal's reserved prefix.
    /// Umlauts, spaces and any other Unicode stay exactly as typed.
    pub fn new(s: &str) -> Result<Name, NameError> {
        let name = Name::existing(s)?;
        if s.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        if s.starts_with(RESERVED_PREFIX) {
            return Err(NameError::Reserved);
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a listing should hide this entry (the portal's own temporary files).
    pub fn is_reserved(s: &str) -> bool {
        s.starts_with(RESERVED_PREFIX)
    }

    /// The `n`-th alternative for a name that is taken: "Übung 1.pdf" → "Übung 1 (2).pdf".
    /// The extension stays last so the file still opens with the right program; a name that
    /// would grow beyond the limit is shortened in its stem, on a character boundary.
    pub fn numbered(&self, n: u32) -> Name {
        let (stem, ext) = split_extension(&self.0);
        let suffix = format!(" ({n}){ext}");
        let mut stem = stem.to_owned();
        while stem.len() + suffix.len() > MAX_NAME_BYTES {
            stem.pop();
        }
        Name(format!("{stem}{suffix}"))
    }
}

/// "a.tar.gz" keeps ".gz" as the extension; ".bashrc" and "Makefile" have none.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path relative to a tree's root, as components. The empty path is the root itself.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RelPath(Vec<Name>);

impl RelPath {
    /// The tree's root.
    pub fn root() -> RelPath {
        RelPath(Vec::new())
    }

    /// Parses "a/b/c" into components that may exist. Empty segments (leading, trailing or
    /// doubled slashes) are skipped; "." and ".." are refused, never interpreted.
    pub fn parse(s: &str) -> Result<RelPath, NameError> {
        let parts = s
            .split('/')
            .filter(|p| !p.is_empty())
            .map(Name::existing)
            .collect::<Result<Vec<_>, _>>()?;
        RelPath::from_names(parts)
    }

    pub fn from_names(names: Vec<Name>) -> Result<RelPath, NameError> {
        if names.len() > MAX_DEPTH {
            return Err(NameError::TooDeep);
        }
        Ok(RelPath(names))
    }

    pub fn names(&self) -> &[Name] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent and the last component; `None` for the root.
    pub fn split_last(&self) -> Option<(RelPath, &Name)> {
        let (last, parent) = self.0.split_last()?;
        Some((RelPath(parent.to_vec()), last))
    }

    /// This path with `name` appended.
    pub fn join(&self, name: Name) -> Result<RelPath, NameError> {
        let mut names = self.0.clone();
        names.push(name);
        RelPath::from_names(names)
    }

    /// Whether `self` is `other` or lies inside it (moving a folder into itself is refused).
    pub fn starts_with(&self, other: &RelPath) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(name.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_as_typed() {
        for ok in [
            "Übung 1.pdf",
            "Straße",
            "résumé.txt",
            ".bashrc",
            "a b  c",
            "日本語",
            "x..y",
        ] {
            assert_eq!(Name::new(ok).map(|n| n.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn refused_names_say_why() {
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::new(".."), Err(NameError::Dot));
        assert_eq!(Name::new("."), Err(NameError::Dot));
        assert_eq!(Name::new("a/b"), Err(NameError::Slash));
        assert_eq!(Name::new("a\0b"), Err(NameError::Nul));
        assert_eq!(Name::new("a\nb"), Err(NameError::Control));
        assert_eq!(Name::new(".ird-upload-1"), Err(NameError::Reserved));
        assert_eq!(Name::new(&"ä".repeat(128)), Err(NameError::TooLong));
        assert!(Name::new(&"ä".repeat(127)).is_ok());
        // What a desktop created can still be addressed, line breaks included.
        assert!(Name::existing("a\nb").is_ok());
    }

    #[test]
    fn paths_never_interpret_dots() {
        assert_eq!(RelPath::parse("a/../b"), Err(NameError::Dot));
        assert_eq!(RelPath::parse("./a"), Err(NameError::Dot));
        assert_eq!(RelPath::parse("/a//b/").map(|p| p.to_string()), Ok("a/b".to_owned()));
        assert!(RelPath::parse("").is_ok_and(|p| p.is_root()));
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert_eq!(RelPath::parse(&deep), Err(NameError::TooDeep));
    }

    #[test]
    fn numbered_names_keep_the_extension_and_the_limit() {
        let n = |s: &str, i| Name::new(s).map(|n| n.numbered(i).to_string());
        assert_eq!(n("Übung 1.pdf", 2), Ok("Übung 1 (2).pdf".to_owned()));
        assert_eq!(n("Makefile", 3), Ok("Makefile (3)".to_owned()));
        assert_eq!(n(".bashrc", 2), Ok(".bashrc (2)".to_owned()));
        let long = format!("{}.txt", "ü".repeat(125));
        let numbered = Name::new(&long).map(|n| n.numbered(10));
        assert!(numbered.is_ok_and(|n| n.as_str().len() <= MAX_NAME_BYTES && n.as_str().ends_with(" (10).txt")));
    }
}
