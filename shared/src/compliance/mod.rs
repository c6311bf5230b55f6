//! Who may be contacted, when, how, and why not: compliance policies per jurisdiction, composed
//! and tightened per tenant, and the engine that applies them. Pure: no I/O, no AWS.
//! docs/compliance.md describes every rule and preset.

pub mod agent_replies;
pub mod country_zones;
pub mod engine;
pub mod holidays;
pub mod keywords;
mod local_zones;
pub mod phone_country;
pub mod policy;
pub mod preferences;
pub mod presets;

pub use agent_replies::{agent_reply_time, AgentReplyTime};
pub use engine::{
    evaluate, hours, latest_consent, rules, Decision, Facts, Holds, Hours, PastContact, Verdict,
};
pub use keywords::{classify_keyword, OptKeyword};
pub use phone_country::country_of_phone;
pub use policy::{Cap, Policy, PolicyError, Range, StopTrigger, Windows};
pub use preferences::{debtor_policy, preferred_first, with_preferred_hours};
pub use presets::{
    compose_presets, jurisdiction_of_phone, policy_for, preset, presets, resolve_policy, NoPolicy,
};

#[cfg(test)]
mod tests;
