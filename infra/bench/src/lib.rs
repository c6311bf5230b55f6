//! Support for the benchmark binaries.

pub mod counting;
