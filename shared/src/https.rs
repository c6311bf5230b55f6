//! HTTPS clients to third parties (Meta's Graph API, Stripe, tenants' webhooks): reqwest over
//! rustls with Mozilla's root store compiled in (webpki-roots). reqwest's default verifier
//! reads every certificate file under /etc/ssl/certs when a client is built, about 5 ms of a
//! cold start (docs/benchmarks.md); the compiled-in store trusts the same public CAs at no cost.
//! `COBRO_TLS_NATIVE_ROOTS=1` trusts the system's roots instead (a TLS-inspecting proxy).

use std::sync::Arc;

/// A client builder with cobro's TLS settings; callers add timeouts and the rest.
pub fn client_builder() -> reqwest::ClientBuilder {
    if std::env::var("COBRO_TLS_NATIVE_ROOTS").as_deref() == Ok("1") {
        return reqwest::Client::builder();
    }
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_with_the_compiled_in_roots() {
        super::client_builder().build().expect("builds");
    }
}
