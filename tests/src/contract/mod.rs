//! Contract suites: one per port, run unchanged against every adapter of that port (the
//! embedded one and the AWS one on moto), so the local stack and AWS are the same system.

pub mod blobs;
pub mod bus;
pub mod queue;
pub mod table;
