//! Test support: the moto harness and the contract suites that every adapter of a port must
//! pass unchanged.

pub mod contract;
pub mod fake_graph;
pub mod fake_stripe;
pub mod moto;
