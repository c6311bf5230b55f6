//! The message on the outbound queue, from the reminders function to the sender.

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, TenantId};

/// Only references: the sender reads the attempt (text, channel, recipient) from the table,
/// so a stale or forged queue message cannot send anything that was not decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub tenant: TenantId,
    pub account: AccountId,
    pub decision_id: String,
}

/// The message on the outbound queue for a reply in a conversation (the chatbot's or an
/// agent's): again only a reference to what is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyMessage {
    pub reply: ReplyRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub tenant: TenantId,
    pub debtor: crate::domain::DebtorId,
    pub id: String,
}
