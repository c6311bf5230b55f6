//! S3 objects over plain signed HTTP: `Blobs` (GET and PUT of one object), `LargeBlobs`
//! (multipart uploads) and `DownloadLinks` (a presigned GET, after a presigned HEAD shows the
//! object is there), signed with `aws-sigv4`, the signer the SDK itself uses, and sent with
//! reqwest.
//!
//! Why not `aws-sdk-s3`: these are the simplest S3 calls, and the S3 crate is the heaviest of
//! the SDK: its checksum stack (crc-fast and friends) is about 1.3 MB of each binary and
//! 0.5 MB of each zip, and building its client parses the SDK's endpoint partitions (about
//! 0.8 M instructions, more than a hello-world Lambda's whole start), neither of which this
//! needs.
//!
//! Addressing: `https://<bucket>.s3.<region>.amazonaws.com` (`.com.cn` in China; path-style for
//! a dotted bucket name), or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` path-style (emulators,
//! VPC endpoints). FIPS and dual-stack hosts are not picked from the SDK's settings: name them
//! in `AWS_ENDPOINT_URL_S3`.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::https::LazyClient;
use crate::ports::blobs::{check_key, BlobError, Blobs, DownloadLinks, LargeBlobs, Upload};

/// What S3's canonical URI leaves as is in a key: the unreserved characters and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A query string's names and values: everything but the unreserved characters is encoded.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// S3 refuses a presigned URL valid for more than seven days.
const MAX_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the URLs the adapter signs for its own requests are valid.
const OWN_REQUEST: Duration = Duration::from_secs(300);
/// Tries per call, as the SDK's standard retry mode: transient failures (a connection error,
/// a timeout, HTTP 5xx, 429) are retried with exponential back-off and jitter.
const ATTEMPTS: u32 = 3;

/// Where the bucket's objects are addressed.
#[derive(Debug, Clone)]
pub enum S3Endpoint {
    /// `https://<bucket>.s3.<region>.<suffix>/<key>`: AWS itself.
    VirtualHosted,
    /// `<endpoint>/<bucket>/<key>`: an emulator or a private endpoint (`AWS_ENDPOINT_URL`),
    /// which has no per-bucket host names.
    PathStyle(String),
}

impl S3Endpoint {
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, as the SDK reads them; else AWS.
    pub fn from_env() -> Self {
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(|url| Self::PathStyle(url.trim().trim_end_matches('/').to_string()))
            .unwrap_or(Self::VirtualHosted)
    }
}

/// One bucket, signed with the credentials of `credentials`.
#[derive(Clone)]
pub struct S3Http {
    bucket: String,
    region: String,
    endpoint: S3Endpoint,
    credentials: SharedCredentialsProvider,
    /// The last credentials, until 5 minutes before they expire: a provider outside Lambda
    /// (instance or container credentials) makes an HTTP call for each, as the SDK's own
    /// identity cache avoids.
    cached: Arc<Mutex<Option<Credentials>>>,
    /// Built on first use: a function builds the adapter at start, not its HTTPS client.
    http: LazyClient,
}

impl S3Http {
    pub fn new(
        bucket: impl Into<String>,
        region: impl Into<String>,
        endpoint: S3Endpoint,
        credentials: SharedCredentialsProvider,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            region: region.into(),
            endpoint,
            credentials,
            cached: Arc::new(Mutex::new(None)),
            http: LazyClient::new(|| {
                crate::https::client_builder()
                    .timeout(Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none())
            }),
        }
    }

    /// The object's URL, unsigned.
    fn url(&self, key: &str) -> String {
        let key = utf8_percent_encode(key, KEY);
        match &self.endpoint {
            S3Endpoint::PathStyle(base) => format!("{base}/{}/{key}", self.bucket),
            S3Endpoint::VirtualHosted => {
                // China's regions have their own DNS suffix; every other region is .com.
                let suffix = if self.region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                if self.bucket.contains('.') {
                    // A dotted name breaks the wildcard certificate of the bucket's own host.
                    format!("https://s3.{}.{suffix}/{}/{key}", self.region, self.bucket)
                } else {
                    format!("https://{}.s3.{}.{suffix}/{key}", self.bucket, self.region)
                }
            }
        }
    }

    /// `method` on the object (with `query`, e.g. a multipart upload's id), presigned for
    /// `valid_for` from now.
    async fn presign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        valid_for: Duration,
    ) -> Result<String, BlobError> {
        let mut url = self.url(key);
        for (n, (name, value)) in query.iter().enumerate() {
            // Encoded as the signer decodes and re-encodes them (`+` must not become a space).
            let sep = if n == 0 { '?' } else { '&' };
            url.push(sep);
            url.extend(utf8_percent_encode(name, QUERY));
            if !value.is_empty() {
                url.push('=');
                url.extend(utf8_percent_encode(value, QUERY));
            }
        }
        self.sign_url(method, &url, valid_for, SystemTime::now())
            .await
    }

    /// `url` (encoded) signed for `method`, valid for `valid_for` from `time`.
    async fn sign_url(
        &self,
        method: &str,
        url: &str,
        valid_for: Duration,
        time: SystemTime,
    ) -> Result<String, BlobError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            BlobError::Backend(format!("cannot presign the link: {what}: {e}"))
        };
        let credentials = self
            .credentials()
            .await
            .map_err(|e| failed("no credentials", &e))?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(valid_for.min(MAX_VALID_FOR));
        // S3 signs the path as sent: encoded once, not normalized.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| failed("signing parameters", &e))?
            .into();
        let request = SignableRequest::new(
            method,
            Cow::Borrowed(url),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| failed("the request", &e))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| failed("signing", &e))?
            .into_parts();
        let mut signed = http::Request::builder()
            .method(method)
            .uri(url)
            .body(())
            .map_err(|e| failed("the URL", &e))?;
        instructions.apply_to_request_http1x(&mut signed);
        Ok(signed.uri().to_string())
    }

    fn http(&self) -> Result<&reqwest::Client, BlobError> {
        self.http
            .get()
            .map_err(|e| BlobError::Backend(format!("cannot build the HTTP client: {e}")))
    }

    async fn credentials(
        &self,
    ) -> Result<Credentials, aws_credential_types::provider::error::CredentialsError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|at| at > SystemTime::now() + Duration::from_secs(300))
        };
        if let Some(c) = self.cached.lock().expect("credentials lock").as_ref() {
            if fresh(c) {
                return Ok(c.clone());
            }
        }
        let c = self.credentials.provide_credentials().await?;
        *self.cached.lock().expect("credentials lock") = Some(c.clone());
        Ok(c)
    }

    /// Sends `method` on the object (with `query`, and `body` with its content type),
    /// retrying transient failures.
    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &[(&str, &str)],
        body: Option<(Bytes, &str)>,
    ) -> Result<reqwest::Response, BlobError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = self
                .presign(method.as_str(), key, query, OWN_REQUEST)
                .await?;
            let mut request = self.http()?.request(method.clone(), &url);
            if let Some((bytes, content_type)) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    .body(bytes.clone());
            }
            let outcome = request.send().await;
            let transient = match &outcome {
                Ok(r) => r.status().is_server_error() || r.status().as_u16() == 429,
                Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            };
            if !transient || attempt == ATTEMPTS {
                return outcome.map_err(|e| BlobError::Backend(format!("S3 {method} failed: {e}")));
            }
            // 50 ms, 100 ms … with full jitter, as the SDK backs off.
            let cap = 50u64 << (attempt - 1);
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=cap))).await;
        }
    }
}

/// What S3 said when it refused: the status and its error code (a HEAD has no body; the code
/// of a GET or PUT is in the XML body, of which the start is enough to name it).
async fn refused(what: &str, response: reqwest::Response) -> BlobError {
    let status = response.status().as_u16();
    let code = response
        .headers()
        .get("x-amz-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let code = match code {
        Some(code) => code,
        None => {
            let body = response.text().await.unwrap_or_default();
            body.split("<Code>")
                .nth(1)
                .and_then(|rest| rest.split("</Code>").next())
                .unwrap_or("no error code")
                .to_string()
        }
    };
    BlobError::Backend(format!("S3 {what} answered HTTP {status} ({code})"))
}

#[async_trait]
impl Blobs for S3Http {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        check_key(key)?;
        let response = self
            .send(
                reqwest::Method::PUT,
                key,
                &[],
                Some((Bytes::from(bytes), content_type)),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(refused("PUT", response).await)
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_key(key)?;
        let response = self.send(reqwest::Method::GET, key, &[], None).await?;
        match response.status().as_u16() {
            200 => {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| BlobError::Backend(format!("S3 GET body: {e}")))?;
                Ok(Some(bytes.to_vec()))
            }
            404 => Ok(None),
            _ => Err(refused("GET", response).await),
        }
    }
}

/// The size of each part but the last: S3 takes 5 MiB to 5 GiB, and at most 10,000 parts, so
/// 8 MiB parts carry objects up to 78 GiB while holding one part in memory.
pub const PART_SIZE: usize = 8 << 20;
/// S3's smallest part (but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// The text of the first `<tag>` in an S3 XML answer (upload ids, error codes: plain text).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + end])
}

impl S3Http {
    /// A multipart upload with parts of `part_size` bytes (at least S3's 5 MiB).
    pub async fn start_upload_with(
        &self,
        key: &str,
        content_type: &str,
        part_size: usize,
    ) -> Result<Box<dyn Upload>, BlobError> {
        check_key(key)?;
        let response = self
            .send(
                reqwest::Method::POST,
                key,
                &[("uploads", "")],
                Some((Bytes::new(), content_type)),
            )
            .await?;
        if !response.status().is_success() {
            return Err(refused("CreateMultipartUpload", response).await);
        }
        let xml = response
            .text()
            .await
            .map_err(|e| BlobError::Backend(format!("S3 CreateMultipartUpload body: {e}")))?;
        let upload_id = xml_text(&xml, "UploadId")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| BlobError::Backend("S3 returned no upload id".into()))?
            .to_string();
        let part_size = part_size.max(MIN_PART_SIZE);
        Ok(Box::new(HttpUpload {
            s3: self.clone(),
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
impl LargeBlobs for S3Http {
    async fn start_upload(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<Box<dyn Upload>, BlobError> {
        self.start_upload_with(key, content_type, PART_SIZE).await
    }
}

/// One multipart upload: parts go up as they fill; `finish` lists them with their ETags.
struct HttpUpload {
    s3: S3Http,
    key: String,
    upload_id: String,
    part_size: usize,
    buffer: Vec<u8>,
    /// Each part sent: its number and ETag.
    parts: Vec<(usize, String)>,
    size: u64,
}

impl HttpUpload {
    async fn send_part(&mut self) -> Result<(), BlobError> {
        let number = self.parts.len() + 1;
        let body = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.part_size));
        let response = self
            .s3
            .send(
                reqwest::Method::PUT,
                &self.key,
                &[
                    ("partNumber", &number.to_string()),
                    ("uploadId", &self.upload_id),
                ],
                Some((Bytes::from(body), "application/octet-stream")),
            )
            .await?;
        if !response.status().is_success() {
            return Err(refused("UploadPart", response).await);
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| BlobError::Backend("S3 returned a part without an ETag".into()))?
            .to_string();
        self.parts.push((number, etag));
        Ok(())
    }
}

#[async_trait]
impl Upload for HttpUpload {
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
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in &self.parts {
            // ETags come quoted; the quotes are XML text, the rest is hex.
            let etag = etag.replace('"', "&quot;");
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let response = self
            .s3
            .send(
                reqwest::Method::POST,
                &self.key,
                &[("uploadId", &self.upload_id)],
                Some((Bytes::from(xml), "application/xml")),
            )
            .await?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| BlobError::Backend(format!("S3 CompleteMultipartUpload body: {e}")))?;
        // S3 may answer 200 and still fail: the error is then in the body.
        if !status.is_success() || body.contains("<Error>") {
            let code = xml_text(&body, "Code").unwrap_or("no error code");
            return Err(BlobError::Backend(format!(
                "S3 CompleteMultipartUpload answered HTTP {} ({code})",
                status.as_u16()
            )));
        }
        Ok(self.size)
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        let response = self
            .s3
            .send(
                reqwest::Method::DELETE,
                &self.key,
                &[("uploadId", &self.upload_id)],
                None,
            )
            .await?;
        // 404: already gone (aborted before, or completed by a retry), which is what abort wants.
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(refused("AbortMultipartUpload", response).await),
        }
    }
}

#[async_trait]
impl DownloadLinks for S3Http {
    async fn download_link(
        &self,
        key: &str,
        valid_for: Duration,
    ) -> Result<Option<String>, BlobError> {
        check_key(key)?;
        // A HEAD for a missing key is 404 only to a caller that may list the bucket (the CRM
        // API's role may: template.yaml); without that right S3 says 403 and this is an error.
        let response = self.send(reqwest::Method::HEAD, key, &[], None).await?;
        match response.status().as_u16() {
            200..=299 => {}
            404 => return Ok(None),
            _ => return Err(refused("HEAD", response).await),
        }
        self.presign("GET", key, &[], valid_for).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    fn links(endpoint: S3Endpoint, region: &str) -> S3Http {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        S3Http::new(
            "cobro-exports",
            region,
            endpoint,
            SharedCredentialsProvider::new(credentials),
        )
    }

    #[test]
    fn urls_are_virtual_hosted_on_aws_and_path_style_on_an_endpoint() {
        let aws = links(S3Endpoint::VirtualHosted, "sa-east-1");
        assert_eq!(
            aws.url("exports/t1/2026-11=a.csv"),
            "https://cobro-exports.s3.sa-east-1.amazonaws.com/exports/t1/2026-11%3Da.csv"
        );
        let china = links(S3Endpoint::VirtualHosted, "cn-north-1");
        assert!(china
            .url("k")
            .starts_with("https://cobro-exports.s3.cn-north-1.amazonaws.com.cn/"));
        let dotted = S3Http::new(
            "exports.acme.example",
            "eu-west-1",
            S3Endpoint::VirtualHosted,
            SharedCredentialsProvider::new(Credentials::new("A", "B", None, None, "t")),
        );
        assert_eq!(
            dotted.url("k"),
            "https://s3.eu-west-1.amazonaws.com/exports.acme.example/k"
        );
        let moto = links(
            S3Endpoint::PathStyle("http://127.0.0.1:5000".into()),
            "us-east-1",
        );
        assert_eq!(
            moto.url("exports/a.csv"),
            "http://127.0.0.1:5000/cobro-exports/exports/a.csv"
        );
    }

    /// The example in S3's documentation ("Authenticating Requests: Using Query Parameters"):
    /// the same request, credentials and time give the signature AWS published.
    #[tokio::test]
    async fn the_signature_is_the_one_in_s3s_documentation() {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "docs",
        );
        let s3 = S3Http::new(
            "examplebucket",
            "us-east-1",
            S3Endpoint::VirtualHosted,
            SharedCredentialsProvider::new(credentials),
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
                                                                              // The documentation's host has no region in it, as S3 still accepts in us-east-1.
        let unsigned = "https://examplebucket.s3.amazonaws.com/test.txt";
        let url = s3
            .sign_url("GET", unsigned, Duration::from_secs(86_400), at)
            .await
            .unwrap();
        assert!(url.contains("X-Amz-Date=20130524T000000Z"), "{url}");
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    /// Counts the calls; its credentials expire `lasting` from now.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<std::sync::atomic::AtomicU32>,
        lasting: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let expiry = SystemTime::now() + self.lasting;
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                "A",
                "B",
                Some("T".into()),
                Some(expiry),
                "counting",
            )))
        }
    }

    #[tokio::test]
    async fn credentials_are_reused_until_five_minutes_before_they_expire() {
        for (lasting, calls) in [(3600, 1), (120, 3)] {
            let counted = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let provider = Counting {
                calls: counted.clone(),
                lasting: Duration::from_secs(lasting),
            };
            let s3 = S3Http::new(
                "b",
                "us-east-1",
                S3Endpoint::VirtualHosted,
                SharedCredentialsProvider::new(provider),
            );
            for _ in 0..3 {
                let url = s3
                    .presign("GET", "k", &[], Duration::from_secs(60))
                    .await
                    .unwrap();
                assert!(url.contains("X-Amz-Security-Token=T"), "{url}");
            }
            assert_eq!(counted.load(std::sync::atomic::Ordering::SeqCst), calls);
        }
    }

    #[test]
    fn query_values_are_encoded_for_the_signer() {
        assert_eq!(
            utf8_percent_encode("a+b/c=d e", QUERY).to_string(),
            "a%2Bb%2Fc%3Dd%20e"
        );
        assert_eq!(
            xml_text("<R><UploadId>x.y-z</UploadId></R>", "UploadId"),
            Some("x.y-z")
        );
        assert_eq!(xml_text("<R/>", "UploadId"), None);
    }

    #[tokio::test]
    async fn a_presigned_link_carries_the_query_signature_and_its_expiry() {
        let aws = links(S3Endpoint::VirtualHosted, "us-east-1");
        let url = aws
            .presign("GET", "exports/t1/a.csv", &[], Duration::from_secs(900))
            .await
            .unwrap();
        assert!(
            url.starts_with("https://cobro-exports.s3.us-east-1.amazonaws.com/exports/t1/a.csv?")
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "%2Fus-east-1%2Fs3%2Faws4_request",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} not in {url}");
        }
        // Seven days at most, as S3 allows.
        let long = aws
            .presign("GET", "k", &[], Duration::from_secs(30 * 24 * 3600))
            .await
            .unwrap();
        assert!(long.contains("X-Amz-Expires=604800"), "{long}");
    }
}
