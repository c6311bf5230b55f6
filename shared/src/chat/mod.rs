//! The self-service chatbot: a debtor's message in, replies and effects out. The engine is pure
//! (`engine::step`); the inbound function loads what it reads, stores the next state and
//! applies the effects.

pub mod dates;
pub mod engine;
pub mod identity;
pub mod intent;
pub mod settings;
pub mod shared_number;
pub mod state;
pub mod text;
pub mod texts;
pub mod vulnerability;

pub use engine::{step, Step, Turn};
pub use identity::IdentityFacts;
pub use settings::{ChatSettings, IdentityCheck};
pub use state::{Awaiting, ChatState, Choice, Effect, Mode, Reply, Want};
pub use vulnerability::{CrisisLine, Sign};
#[cfg(test)]
mod tests;
