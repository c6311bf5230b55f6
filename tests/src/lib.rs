//! Test support: the moto harness and the contract suites that every adapter of a port must
//! pass unchanged.

pub mod contract;
pub mod fake_graph;
pub mod fake_stripe;
pub mod fixtures;
pub mod flaky;
pub mod hooked_table;
pub mod local;
pub mod memory_secrets;
pub mod moto;
pub mod payment_before_write;

/// An HTTP client for the tests, with cobro's TLS settings: reqwest is built without a
/// default crypto provider (rustls on ring comes through `cobro::https`), so
/// `reqwest::Client::new()` would panic.
pub fn http() -> reqwest::Client {
    cobro::https::client_builder()
        .build()
        .expect("the test HTTP client builds")
}
