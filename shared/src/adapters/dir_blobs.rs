//! `Blobs` in a directory: the local stack's stand-in for S3. Writes go to a temporary file
//! renamed into place, so a reader never sees half a blob. Large objects are written the same
//! way, a piece at a time, and their links point at the local stack's download route.

use async_trait::async_trait;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::ports::blobs::{check_key, BlobError, Blobs, DownloadLinks, LargeBlobs, Upload};

#[derive(Debug, Clone)]
pub struct DirBlobs {
    root: PathBuf,
    /// What a download link starts with (the route that serves these files); the key follows.
    link_base: String,
}

impl DirBlobs {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
            link_base: "file://".into(),
        }
    }

    /// Download links become `<base>/<key>`.
    pub fn with_link_base(mut self, base: impl Into<String>) -> Self {
        self.link_base = base.into().trim_end_matches('/').to_string();
        self
    }

    /// Where a key's file is (for the route that serves it).
    pub fn file(&self, key: &str) -> Result<PathBuf, BlobError> {
        self.path(key)
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn backend(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(backend)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes).await.map_err(backend)?;
        tokio::fs::rename(&tmp, &path).await.map_err(backend)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }
}

struct DirUpload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    size: u64,
}

#[async_trait]
impl Upload for DirUpload {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.file.write_all(bytes).await.map_err(backend)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, BlobError> {
        self.file.flush().await.map_err(backend)?;
        self.file.get_ref().sync_all().await.map_err(backend)?;
        tokio::fs::rename(&self.tmp, &self.path)
            .await
            .map_err(backend)?;
        Ok(self.size)
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        drop(self.file);
        match tokio::fs::remove_file(&self.tmp).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(backend(e)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl LargeBlobs for DirBlobs {
    async fn start_upload(
        &self,
        key: &str,
        _content_type: &str,
    ) -> Result<Box<dyn Upload>, BlobError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(backend)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&tmp).await.map_err(backend)?;
        Ok(Box::new(DirUpload {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            path,
            size: 0,
        }))
    }
}

#[async_trait]
impl DownloadLinks for DirBlobs {
    async fn download_link(
        &self,
        key: &str,
        _valid_for: std::time::Duration,
    ) -> Result<Option<String>, BlobError> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(_) => Ok(Some(format!("{}/{key}", self.link_base))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }
}
