//! cobro's common crate: the collection domain, the ports it talks through, the repositories
//! written once over `Table`, and the adapters (embedded and AWS, one feature each).

pub mod adapters;
#[cfg(all(feature = "lambda", target_os = "linux"))]
pub mod c_math;
pub mod chat;
pub mod collect;
pub mod compliance;
pub mod domain;
pub mod events;
pub mod explain;
pub mod export;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "https")]
pub mod https;
pub mod inbound;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logs;
pub mod metrics;
pub mod outbound;
pub mod plans;
pub mod ports;
pub mod repo;
pub mod whatsapp;
