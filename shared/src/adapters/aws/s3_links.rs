//! `DownloadLinks` on S3 without the S3 SDK: a presigned GET made with `aws-sigv4` (the
//! signer the SDK itself uses), and a presigned HEAD to see that the object is there.
//!
//! Why not `aws-sdk-s3`: the CRM API only ever makes links, and the S3 crate brings its
//! checksum stack (crc-fast and friends) with it, about 1 MB of the CRM API's binary and
//! 0.5 MB of its zip, which the 4 MB limit on a Lambda zip cannot spare. Uploads (the export
//! function) stay on the SDK.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ports::blobs::{check_key, BlobError, DownloadLinks};

/// What S3's canonical URI leaves as is in a key: the unreserved characters and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// S3 refuses a presigned URL valid for more than seven days.
const MAX_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

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

#[derive(Clone)]
pub struct S3Links {
    bucket: String,
    region: String,
    endpoint: S3Endpoint,
    credentials: SharedCredentialsProvider,
    http: Arc<OnceLock<reqwest::Client>>,
}

impl S3Links {
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
            http: Arc::new(OnceLock::new()),
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
                format!("https://{}.s3.{}.{suffix}/{key}", self.bucket, self.region)
            }
        }
    }

    /// `method` on the object, presigned for `valid_for`.
    async fn presign(
        &self,
        method: &str,
        key: &str,
        valid_for: Duration,
    ) -> Result<String, BlobError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            BlobError::Backend(format!("cannot presign the link: {what}: {e}"))
        };
        let credentials = self
            .credentials
            .provide_credentials()
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
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| failed("signing parameters", &e))?
            .into();
        let url = self.url(key);
        let request = SignableRequest::new(
            method,
            Cow::Borrowed(url.as_str()),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| failed("the request", &e))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| failed("signing", &e))?
            .into_parts();
        let mut signed = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(())
            .map_err(|e| failed("the URL", &e))?;
        instructions.apply_to_request_http1x(&mut signed);
        Ok(signed.uri().to_string())
    }

    /// Built on the first check: only requests for a finished export's link need it.
    fn http(&self) -> Result<&reqwest::Client, BlobError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = crate::https::client_builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BlobError::Backend(format!("cannot build the HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }
}

#[async_trait]
impl DownloadLinks for S3Links {
    async fn download_link(
        &self,
        key: &str,
        valid_for: Duration,
    ) -> Result<Option<String>, BlobError> {
        check_key(key)?;
        // A HEAD for a missing key is 404 only to a caller that may list the bucket (the CRM
        // API's role may: template.yaml); without that right S3 says 403 and this is an error.
        let head = self.presign("HEAD", key, Duration::from_secs(60)).await?;
        let response = self
            .http()?
            .head(&head)
            .send()
            .await
            .map_err(|e| BlobError::Backend(format!("S3 HEAD failed: {e}")))?;
        match response.status().as_u16() {
            200..=299 => {}
            404 => return Ok(None),
            status => {
                let code = response
                    .headers()
                    .get("x-amz-error-code")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("no error code")
                    .to_string();
                return Err(BlobError::Backend(format!(
                    "S3 HEAD answered HTTP {status} ({code})"
                )));
            }
        }
        self.presign("GET", key, valid_for).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    fn links(endpoint: S3Endpoint, region: &str) -> S3Links {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        S3Links::new(
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
        let moto = links(
            S3Endpoint::PathStyle("http://127.0.0.1:5000".into()),
            "us-east-1",
        );
        assert_eq!(
            moto.url("exports/a.csv"),
            "http://127.0.0.1:5000/cobro-exports/exports/a.csv"
        );
    }

    #[tokio::test]
    async fn a_presigned_link_carries_the_query_signature_and_its_expiry() {
        let aws = links(S3Endpoint::VirtualHosted, "us-east-1");
        let url = aws
            .presign("GET", "exports/t1/a.csv", Duration::from_secs(900))
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
            .presign("GET", "k", Duration::from_secs(30 * 24 * 3600))
            .await
            .unwrap();
        assert!(long.contains("X-Amz-Expires=604800"), "{long}");
    }
}
