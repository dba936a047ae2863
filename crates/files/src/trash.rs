//! The trash of one user: deleted entries are moved (renamed, not copied) into a tree of its
//! own outside every desktop's mounts, kept for the retention period and restorable until then.
//! Layout: `<id>/<original name>` and `<id>.json` with where it came from and when.

use serde::{Deserialize, Serialize};

use crate::name::{Name, RelPath};
use crate::tree::{Entry, FilesError, OnClash, Tree};

/// One deleted entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashItem {
    /// 16 lowercase hex digits.
    pub id: String,
    /// Where it was, relative to its tree.
    pub original: String,
    /// Unix seconds.
    pub deleted_at: i64,
    /// File or folder, and the file's size, as it was deleted.
    #[serde(skip_deserializing, default)]
    pub size: u64,
}

/// A user's trash.
#[derive(Debug)]
pub struct Trash {
    tree: Tree,
}

impl Trash {
    pub fn new(tree: Tree) -> Trash {
        Trash { tree }
    }

    /// Moves `path` of `from` into the trash. Both trees must be on one file system.
    pub fn put(&self, from: &Tree, path: &RelPath, now: i64) -> Result<TrashItem, FilesError> {
        let (_, name) = path.split_last().ok_or(FilesError::IsADirectory)?;
        let id = format!("{:016x}", rand::random::<u64>());
        let folder = RelPath::root().join(Name::existing(&id)?)?;
        self.tree.mkdir(&folder)?;
        let moved = from.move_to(path, &self.tree, &folder.join(name.clone())?, OnClash::Fail);
        if let Err(e) = moved {
            let _ = self.tree.remove(&folder);
            return Err(e);
        }
        let item = TrashItem {
            id: id.clone(),
            original: path.to_string(),
            deleted_at: now,
            size: 0,
        };
        let json = serde_json::to_vec(&item).map_err(|e| FilesError::Io(e.into()))?;
        self.tree
            .write(&meta_path(&id)?, &mut json.as_slice(), unlimited(), OnClash::Fail)?;
        Ok(item)
    }

    /// Everything in the trash, newest first. Entries whose description is unreadable are
    /// left out (and removed by the next purge).
    pub fn list(&self) -> Result<Vec<TrashItem>, FilesError> {
        let mut items = Vec::new();
        for entry in self.tree.list(&RelPath::root())? {
            let Some(id) = entry.name.strip_suffix(".json").filter(|id| valid_id(id)) else {
                continue;
            };
            if let Ok(item) = self.item(id) {
                items.push(item);
            }
        }
        items.sort_by(|a, b| b.deleted_at.cmp(&a.deleted_at).then_with(|| a.id.cmp(&b.id)));
        Ok(items)
    }

    fn item(&self, id: &str) -> Result<TrashItem, FilesError> {
        let (mut file, _) = self.tree.open_read(&meta_path(id)?)?;
        let mut item: TrashItem =
            serde_json::from_reader(&mut file).map_err(|e| FilesError::Io(std::io::Error::other(e)))?;
        item.id = id.to_owned();
        if let Some(entry) = self.content(id)? {
            item.size = entry.size;
        }
        Ok(item)
    }

    /// The one entry inside an item's folder.
    fn content(&self, id: &str) -> Result<Option<Entry>, FilesError> {
        let folder = RelPath::root().join(Name::existing(id)?)?;
        Ok(self.tree.list(&folder)?.into_iter().next())
    }

    /// Puts an item back where it was (the folders on the way are re-created; a name now taken
    /// gets a number). Returns where it went.
    pub fn restore(&self, id: &str, to: &Tree) -> Result<RelPath, FilesError> {
        if !valid_id(id) {
            return Err(FilesError::NotFound);
        }
        let item = self.item(id)?;
        let content = self.content(id)?.ok_or(FilesError::NotFound)?;
        let original = RelPath::parse(&item.original)?;
        let (parent, _) = original.split_last().ok_or(FilesError::NotFound)?;
        let mut made = RelPath::root();
        for name in parent.names() {
            made = made.join(name.clone())?;
            match to.mkdir(&made) {
                Ok(()) | Err(FilesError::Exists) => {}
                Err(e) => return Err(e),
            }
        }
        let from = RelPath::root()
            .join(Name::existing(id)?)?
            .join(Name::existing(&content.name)?)?;
        let name = self.tree.move_to(&from, to, &original, OnClash::Number)?;
        self.tree.remove(&RelPath::root().join(Name::existing(id)?)?)?;
        self.tree.remove(&meta_path(id)?)?;
        parent.join(name).map_err(Into::into)
    }

    /// Removes for good what was deleted before `before` (unix seconds). Returns how many.
    pub fn purge(&self, before: i64) -> Result<usize, FilesError> {
        let mut purged = 0;
        for item in self.list()? {
            if item.deleted_at < before {
                self.tree.remove(&RelPath::root().join(Name::existing(&item.id)?)?)?;
                self.tree.remove(&meta_path(&item.id)?)?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn meta_path(id: &str) -> Result<RelPath, FilesError> {
    Ok(RelPath::root().join(Name::existing(&format!("{id}.json"))?)?)
}

fn unlimited() -> crate::tree::Limit {
    crate::tree::Limit {
        bytes: u64::MAX,
        kind: crate::tree::LimitKind::Upload,
    }
}
