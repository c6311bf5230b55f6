//! `Blobs` on S3: one object per key in the bucket, encrypted at rest by the bucket's default.
//! Large objects go up as multipart uploads, one part per `PART_SIZE` written, and come back
//! through presigned GETs (`S3Http`).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::ports::blobs::{check_key, BlobError, Blobs, LargeBlobs, Upload};

/// The size of each part but the last: S3 takes 5 MiB to 5 GiB, and at most 10,000 parts, so
/// 8 MiB parts carry objects up to 78 GiB while holding one part in memory.
pub const PART_SIZE: usize = 8 << 20;
/// S3's smallest part (but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;

#[derive(Clone)]
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

fn backend<E>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> BlobError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    BlobError::Backend(super::describe(&e))
}

struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    part_size: usize,
    buffer: Vec<u8>,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl S3Upload {
    async fn send_part(&mut self) -> Result<(), BlobError> {
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.part_size));
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(backend)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, mut bytes: &[u8]) -> Result<(), BlobError> {
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = self.part_size - self.buffer.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = rest;
            if self.buffer.len() == self.part_size {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, BlobError> {
        // The last part may be small, or empty when nothing else was written (S3 needs one).
        if !self.buffer.is_empty() || self.parts.is_empty() {
            self.send_part().await?;
        }
        let parts = std::mem::take(&mut self.parts);
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(self.size)
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl S3Blobs {
    /// A multipart upload with parts of `part_size` bytes (at least S3's 5 MiB).
    pub async fn start_upload_with(
        &self,
        key: &str,
        content_type: &str,
        part_size: usize,
    ) -> Result<Box<dyn Upload>, BlobError> {
        check_key(key)?;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(backend)?;
        let upload_id = out
            .upload_id
            .ok_or_else(|| BlobError::Backend("S3 returned no upload id".into()))?;
        let part_size = part_size.max(MIN_PART_SIZE);
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id,
            part_size,
            buffer: Vec::with_capacity(part_size),
            parts: Vec::new(),
            size: 0,
        }))
    }
}

#[async_trait]
impl LargeBlobs for S3Blobs {
    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, BlobError> {
        self.start_upload_with(key, content_type, PART_SIZE).await
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| BlobError::Backend(super::describe(&e)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| BlobError::Backend(e.to_string()))?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(BlobError::Backend(super::describe(&e))),
        }
    }
}
