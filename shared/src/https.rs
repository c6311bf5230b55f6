//! HTTPS clients to third parties (Meta's Graph API, Stripe, tenants' webhooks): reqwest over
//! rustls on ring, with Mozilla's root store compiled in (webpki-roots). Reading the system's
//! store means parsing every certificate file under /etc/ssl/certs when a client is built,
//! about 5 ms of a cold start (docs/benchmarks.md); the compiled-in store trusts the same
//! public CAs at no cost. `COBRO_TLS_NATIVE_ROOTS=1` trusts the system's roots instead (a
//! TLS-inspecting proxy). ring rather than aws-lc: the same protocols, about 1 MB less in
//! each Lambda zip.

use std::sync::{Arc, OnceLock};

/// A client builder with cobro's TLS settings; callers add timeouts and the rest.
pub fn client_builder() -> reqwest::ClientBuilder {
    let roots = if native_roots() {
        system_roots()
    } else {
        rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

/// A client built on its first use, for an adapter that only some requests need (Stripe for
/// payment links, Graph for media downloads): a cold start does not pay for it, and a request
/// that needs it builds it once.
/// Clones share one client.
#[derive(Clone)]
pub struct LazyClient {
    client: Arc<OnceLock<reqwest::Client>>,
    builder: Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
}

impl LazyClient {
    /// `builder` configures the client (timeouts, user agent) from `client_builder()`.
    pub fn new(builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            builder: Arc::new(builder),
        }
    }

    /// Builds the client now: for a function whose every request uses it.
    pub fn built(self) -> Result<Self, reqwest::Error> {
        self.get()?;
        Ok(self)
    }

    pub fn get(&self) -> Result<&reqwest::Client, reqwest::Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = (self.builder)().build()?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// `COBRO_TLS_NATIVE_ROOTS=1`: trust the system's root store rather than a compiled-in one.
fn native_roots() -> bool {
    std::env::var("COBRO_TLS_NATIVE_ROOTS").as_deref() == Ok("1")
}

/// The system's roots; unreadable files are skipped (as the SDK does), and a store with no
/// usable root makes every connection fail with a certificate error that says so.
fn system_roots() -> rustls::RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system root certificate could not be read");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "system root certificates that rustls cannot use were skipped"
        );
    }
    roots
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_with_the_compiled_in_roots() {
        super::client_builder().build().expect("builds");
    }

    #[test]
    fn a_lazy_client_is_built_once_on_first_use_and_shared_by_clones() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static BUILT: AtomicU32 = AtomicU32::new(0);
        let lazy = super::LazyClient::new(|| {
            BUILT.fetch_add(1, Ordering::SeqCst);
            super::client_builder()
        });
        let clone = lazy.clone();
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            0,
            "nothing built at construction"
        );
        lazy.get().unwrap();
        clone.get().unwrap();
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_client_builds_with_the_system_roots() {
        assert!(!super::system_roots().is_empty() || cfg!(not(target_os = "linux")));
    }
}
