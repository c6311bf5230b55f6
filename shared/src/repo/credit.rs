//! The account as the CRM restates it, with the debtor's credit set against it
//! (`domain::credit`), and the record of what the credit paid: in the account's history and,
//! beside the payments, in the payments ledger (the month index by when it happened, and the
//! recorded index for the daily feed), written with the account.

use jiff::Timestamp;

use super::{keys, to_item, RepoError};
use crate::domain::{Account, CreditNetted, Money};
use crate::ports::table::{WriteOp, GSI1};

/// What a CRM statement writes: the account, and the credit it moved, if any.
pub(super) struct Restated {
    pub account: Account,
    pub netted: Option<CreditNetted>,
}

/// `stated` (the account as the CRM sends it) over `current` (as stored): cobro's own fields
/// kept, its currency unchanged (`currency_change`), the version bumped and the credit set
/// against a rise of the balance. `now` dates the credit's move.
pub(super) fn restate(
    current: Option<&Account>,
    stated: &Account,
    now: Timestamp,
) -> Result<Restated, RepoError> {
    let mut next = stated.clone();
    next.version = current.map_or(1, |c| c.version + 1);
    let Some(c) = current else {
        return Ok(Restated {
            account: next,
            netted: None,
        });
    };
    if c.currency != next.currency {
        return Err(RepoError::InvalidField {
            field: "currency",
            detail: super::accounts::currency_change(c, next.currency),
        });
    }
    next.plan = c.plan.clone();
    next.promise = c.promise.clone();
    let moved = next.net_credit(c);
    let netted = (moved != 0).then(|| CreditNetted {
        tenant: next.tenant.clone(),
        account: next.id.clone(),
        id: CreditNetted::id_for(next.version),
        amount: Money::new(moved, next.currency),
        at: now,
        stated_minor: stated.balance_minor,
        balance_minor: next.balance_minor,
        credit_minor: next.credit_minor,
    });
    Ok(Restated {
        account: next,
        netted,
    })
}

/// The kind of a credit move's items, for the readers of the account and of the ledger.
pub(super) const KIND: &str = "credit_netted";

/// The writes that record `entry`, made by the account write at `version`: its item in the
/// account's partition on the month index, and its copy on the recorded index. Unconditional:
/// the account's own write is conditional on its version, and the key is that version's.
pub(super) fn record(entry: &CreditNetted, version: u64) -> Vec<WriteOp> {
    let (t, a) = (&entry.tenant, &entry.account);
    let month = entry.at.strftime("%Y-%m").to_string();
    let mut item = to_item(keys::credit_netted(t, a, version), KIND, entry);
    item.insert(GSI1.pk.into(), keys::gsi1_payments(t, &month).into());
    item.insert(
        GSI1.sk.into(),
        keys::gsi1_payment_sk(entry.at.as_millisecond(), a, &entry.id).into(),
    );
    let recorded = to_item(
        keys::recorded_payment(t, entry.at, a, &entry.id),
        KIND,
        entry,
    );
    vec![
        WriteOp::Put {
            item,
            condition: None,
        },
        WriteOp::Put {
            item: recorded,
            condition: None,
        },
    ]
}
