//! Portal-wide settings an admin changes at run time (branding, audit retention), and uploaded
//! images (desktop type icons, the school's logo).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row;

use crate::{Store, StoreError, now};

/// Longest setting value accepted.
const MAX_VALUE_CHARS: usize = 4096;
/// The image types the portal serves; anything else (SVG above all, which can carry script) is
/// refused before it reaches the store.
pub const IMAGE_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/webp"];

/// An uploaded image as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredImage {
    pub content_type: String,
    pub data: Vec<u8>,
    /// Unix seconds; doubles as a cache-busting version.
    pub updated_at: i64,
}

impl Store {
    /// The value of setting `key`, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Every setting as (key, value, updated_at), by key.
    pub async fn settings(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT key, value, updated_at FROM settings ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?, r.try_get("updated_at")?)))
            .collect()
    }

    /// Sets `key` to `value`; `None` removes it (the default applies again).
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let Some(value) = value else {
            sqlx::query("DELETE FROM settings WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await?;
            return Ok(());
        };
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(StoreError::Invalid(format!(
                "{key}: at most {MAX_VALUE_CHARS} characters"
            )));
        }
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores an image under `key`, replacing one there. The caller has checked the bytes;
    /// the store only insists on a known content type.
    pub async fn put_image(&self, key: &str, content_type: &str, data: &[u8]) -> Result<(), StoreError> {
        if !IMAGE_TYPES.contains(&content_type) {
            return Err(StoreError::Invalid(format!(
                "content type {content_type:?} is not one of {}",
                IMAGE_TYPES.join(", ")
            )));
        }
        sqlx::query(
            "INSERT INTO images (key, content_type, data, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, \
             updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(content_type)
        .bind(STANDARD.encode(data))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn image(&self, key: &str) -> Result<Option<StoredImage>, StoreError> {
        let row = sqlx::query("SELECT content_type, data, updated_at FROM images WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("data")?;
        let data = STANDARD
            .decode(text)
            .map_err(|e| StoreError::corrupt(format!("images.data of {key:?} is not base64: {e}")))?;
        Ok(Some(StoredImage {
            content_type: row.try_get("content_type")?,
            data,
            updated_at: row.try_get("updated_at")?,
        }))
    }

    /// When each stored image changed, by key (to version URLs without loading the bytes).
    pub async fn image_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT key, updated_at FROM images ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("updated_at")?)))
            .collect()
    }

    /// Removes the image; succeeds if there was none.
    pub async fn delete_image(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM images WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
