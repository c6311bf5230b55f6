//! Support for the benchmark binaries.

pub mod cli;
pub mod counting;
pub mod fixtures;
