//! `Blobs`: durable bytes by key, as S3. Raw webhook bodies (Meta has no replay API and a body
//! can be 3 MB, over any queue's or item's limit) and downloaded media (payment receipts).

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("invalid blob key `{0}`")]
    InvalidKey(String),
    #[error("the blob store failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores `bytes` under `key`, replacing what was there. Keys are `/`-separated paths of
    /// letters, digits and `-_.=`; callers make them content-addressed where a retry may write
    /// twice, so a rewrite stores the same bytes.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError>;

    /// The bytes under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
}

/// Refuses keys that could escape a directory or that S3 treats specially.
pub fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_string()))
    }
}

/// One object written in pieces, as an S3 multipart upload: the caller writes as it produces
/// and never holds the whole object. Nothing is visible under the key until `finish`; after
/// `abort` (or a crash) nothing is.
#[async_trait]
pub trait Upload: Send {
    /// Appends bytes; the adapter sends a part whenever it holds enough.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError>;

    /// Completes the object; returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, BlobError>;

    /// Gives up: the parts sent so far are discarded.
    async fn abort(self: Box<Self>) -> Result<(), BlobError>;
}

/// Large objects, written in parts; they are read back through `DownloadLinks`.
#[async_trait]
pub trait LargeBlobs: Send + Sync {
    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, BlobError>;
}

/// Links to stored objects (S3: a presigned GET), for people and systems without credentials.
#[async_trait]
pub trait DownloadLinks: Send + Sync {
    /// A link that downloads the object without other credentials until `valid_for` has
    /// passed; `None` when there is no such object.
    async fn download_link(
        &self,
        key: &str,
        valid_for: std::time::Duration,
    ) -> Result<Option<String>, BlobError>;
}
