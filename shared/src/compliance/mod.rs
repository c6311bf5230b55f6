//! Who may be contacted, when, how, and why not: compliance policies per jurisdiction, composed
//! and tightened per tenant, and the engine that applies them. Pure: no I/O, no AWS.

pub mod engine;
pub mod holidays;
pub mod policy;
pub mod presets;

pub use engine::{evaluate, Decision, Facts, Holds, PastContact, Verdict};
pub use policy::{Cap, Policy, PolicyError, Range, StopTrigger, Windows};
pub use presets::{jurisdiction_of_phone, policy_for, preset, presets};

#[cfg(test)]
mod tests;
