//! Implementations of the ports: embedded (SQLite, in-process, sandbox) and AWS.

#[cfg(feature = "aws")]
pub mod aws;
pub mod dir_blobs;
pub mod dir_secrets;
pub mod local_bus;
pub mod pay_page;
pub mod sandbox;
#[cfg(feature = "embedded")]
pub mod sqlite;
#[cfg(feature = "checkout")]
pub mod stripe_checkout;
