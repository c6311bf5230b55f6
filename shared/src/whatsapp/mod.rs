//! WhatsApp Cloud API formats and checks shared by the webhook and the sender.

#[cfg(feature = "whatsapp")]
pub mod channel;
#[cfg(feature = "whatsapp")]
pub mod client;
pub mod errors;
pub mod events;
pub mod send;
pub mod signature;
pub mod tokens;
pub mod webhook;
