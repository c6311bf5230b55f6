//! Events about an account written in the same transaction as the change they announce, and
//! deleted once published: an outbox. One left behind by a failed publish is on the due
//! index, so the next reminders tick publishes it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::accounts::set_due;
use super::{keys, to_item, RepoError, Store};
use crate::domain::{Account, AccountId, TenantId};
use crate::events::webhook::event_id;
use crate::ports::table::WriteOp;
use crate::ports::Event;

/// An event waiting to be published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub tenant: TenantId,
    pub account: AccountId,
    pub event: Event,
}

impl Announcement {
    pub fn of(account: &Account, event: Event) -> Self {
        Self {
            tenant: account.tenant.clone(),
            account: account.id.clone(),
            event,
        }
    }

    fn id(&self) -> String {
        event_id(&self.event.detail_type, &self.event.detail)
    }

    /// Its put, to go in the transaction of the change it announces; due at `at`.
    pub(super) fn put(&self, at: Timestamp) -> WriteOp {
        let id = self.id();
        let mut item = to_item(
            keys::announcement(&self.tenant, &self.account, &id),
            "announce",
            self,
        );
        set_due(
            &mut item,
            &self.tenant,
            at,
            &format!("ANNOUNCE#{}#{id}", self.account),
            &self.account,
        );
        WriteOp::Put {
            item,
            condition: None,
        }
    }
}

impl Store {
    /// Published: off the outbox.
    pub async fn announced(&self, a: &Announcement) -> Result<(), RepoError> {
        self.table
            .delete(&keys::announcement(&a.tenant, &a.account, &a.id()), None)
            .await?;
        Ok(())
    }
}
