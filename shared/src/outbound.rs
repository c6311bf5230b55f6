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
