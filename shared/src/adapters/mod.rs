//! Implementations of the ports: embedded (SQLite, in-process, sandbox) and AWS.

#[cfg(feature = "aws")]
pub mod aws;
pub mod dir_blobs;
pub mod local_bus;
pub mod sandbox;
#[cfg(feature = "embedded")]
pub mod sqlite;
