//! The SDK configuration the Lambda binaries share, built for a fast cold start.
//!
//! The standard chain costs most of a cold start (about 3× a hello-world function, measured in
//! docs/benchmarks.md): it builds an HTTPS client that parses every root certificate on the
//! system, and probes for region and credentials. On Lambda both are in the environment, and
//! every AWS endpoint's certificate chains to Amazon's own roots, so this configuration trusts
//! only those (five certificates, compiled in) and takes region and credentials from the
//! environment, falling back to the standard chain elsewhere. `COBRO_TLS_NATIVE_ROOTS=1`
//! trusts the system's roots instead (a TLS-inspecting proxy, a private endpoint).

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Amazon Root CA 1–4 and Starfield Services Root G2: the roots of AWS service endpoints.
const AWS_ROOTS: &[u8] = include_bytes!("aws-roots.pem");

/// Region and credentials from the environment when set (on Lambda, always), else the standard
/// chain. It honours `AWS_ENDPOINT_URL`, which is how tests point the SDK at a local emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let https = if std::env::var("COBRO_TLS_NATIVE_ROOTS").as_deref() == Ok("1") {
        system_https_client()
    } else {
        let tls_context = TlsContext::builder()
            .with_trust_store(TrustStore::empty().with_pem_certificate(AWS_ROOTS))
            .build()
            .expect("the compiled-in roots are valid PEM");
        SharedHttpClient::new(NoEagerConnector(https_client(tls_context)))
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    if let Ok(region) = std::env::var("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

/// The SDK's HTTPS client trusting the system's roots, with the SDK's start-time check (an
/// unreadable store fails when a client is built): for tools run by people (`cobro-admin`)
/// and tests, where start time does not matter.
pub fn system_https_client() -> SharedHttpClient {
    https_client(
        TlsContext::builder()
            .build()
            .expect("the default TLS context"),
    )
}

/// The SDK's own HTTPS client (hyper, rustls on ring). The SDK crates' `default-https-client`
/// would bring rustls on aws-lc, about 1 MB more in each Lambda zip, for the same protocols.
fn https_client(tls_context: TlsContext) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context)
        .build_https()
}

/// The SDK's HTTPS client without its start-time check. On every client's construction the
/// SDK builds a whole TLS connector (trust store parsed, rustls configured) and throws it away,
/// so that a bad system trust store fails at start; the connector requests use is built again
/// on the first request in any case. With compiled-in roots there is nothing to find out early,
/// so this skips the throwaway build: about a quarter of a millisecond per client at cold start
/// (docs/benchmarks.md), and nothing moves into the first request.
#[derive(Debug)]
struct NoEagerConnector(SharedHttpClient);

impl HttpClient for NoEagerConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A required environment variable (a table name, a queue URL), or a message that names it, so
/// a function missing one stops at start with a reason instead of failing on its first request.
pub fn from_env(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        Ok(_) => Err(format!("the environment variable {name} is set but empty")),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("the environment variable {name} must be set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "the environment variable {name} is not valid UTF-8"
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_roots_are_the_five_aws_roots() {
        let pem = std::str::from_utf8(super::AWS_ROOTS).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let err = super::from_env("COBRO_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(err.contains("COBRO_TEST_SURELY_UNSET_VARIABLE"), "{err}");
        let path = super::from_env("PATH").unwrap();
        assert!(!path.is_empty());
    }
}
