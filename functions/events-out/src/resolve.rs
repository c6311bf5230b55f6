//! Name resolution for deliveries in a deployment: a tenant's host name that resolves to a
//! loopback, private or link-local address (DNS rebinding, a name pointed at 127.0.0.1) is
//! refused at connect time, as the URL check refuses such an address written literally.

use std::net::SocketAddr;

use cobro::events::webhook::is_public;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves with the system resolver and keeps only public addresses; none left is an error.
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            // The port is the connector's; lookup_host needs one.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("`{host}` resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
