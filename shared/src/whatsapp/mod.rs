//! WhatsApp Cloud API formats and checks shared by the webhook and the sender.

pub mod send;
pub mod signature;
pub mod webhook;
