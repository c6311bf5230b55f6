//! Applying a confirmed payment: the payment record and the balance change commit together,
//! and the payment's id makes a second delivery a no-op.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{keys, to_item, RepoError, Store};
use crate::domain::{AccountId, AccountStatus, Currency, Money, Payment, PaymentId, TenantId};
use crate::ports::table::{Condition, TableError, Update, WriteOp, DUE_INDEX};

/// The `PaymentConfirmed` event's detail: cobro's documented schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentConfirmed {
    pub tenant: TenantId,
    pub account: AccountId,
    pub payment_id: PaymentId,
    /// Minor units of `currency`; positive.
    pub amount_minor: i64,
    pub currency: Currency,
    pub paid_at: Timestamp,
    #[serde(default = "unknown")]
    pub method: String,
    #[serde(default = "unknown")]
    pub source: String,
}

fn unknown() -> String {
    "unknown".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Applied {
        applied_minor: i64,
        balance_minor: i64,
        settled: bool,
    },
    /// This payment id was applied before: nothing changed.
    Duplicate,
}

impl Store {
    pub async fn apply_payment(&self, p: &PaymentConfirmed) -> Result<PaymentOutcome, RepoError> {
        if p.amount_minor <= 0 {
            return Err(RepoError::Invalid("amount_minor must be positive".into()));
        }
        let payment_key = keys::payment(&p.tenant, &p.account, p.payment_id.as_str());
        for _ in 0..5 {
            if self.table.get(&payment_key).await?.is_some() {
                return Ok(PaymentOutcome::Duplicate);
            }
            let account = self
                .account(&p.tenant, &p.account)
                .await?
                .ok_or_else(|| RepoError::NotFound(format!("account {}", p.account)))?;
            if account.currency != p.currency {
                return Err(RepoError::Invalid(format!(
                    "payment in {} for an account in {}",
                    p.currency, account.currency
                )));
            }
            // An overpayment is recorded whole; only what was owed reduces the balance.
            let applied = p.amount_minor.min(account.balance_minor);
            let balance = account.balance_minor - applied;
            let settled = balance == 0;
            let payment = Payment {
                tenant: p.tenant.clone(),
                account: p.account.clone(),
                id: p.payment_id.clone(),
                amount: Money::new(p.amount_minor, p.currency),
                paid_at: p.paid_at,
                method: p.method.clone(),
                source: p.source.clone(),
                applied_minor: applied,
            };
            let mut updates = vec![
                Update::set("balance_minor", balance),
                Update::add("version", 1),
            ];
            if settled {
                // Settled: no more reminders, so off the due index in the same write.
                let status = serde_json::to_value(AccountStatus::Settled).expect("enum");
                updates.push(Update::Set("status".into(), status));
                updates.push(Update::remove(DUE_INDEX.pk));
                updates.push(Update::remove(DUE_INDEX.sk));
                updates.push(Update::remove("next_action_at"));
            }
            let ops = vec![
                WriteOp::Put {
                    item: to_item(payment_key.clone(), "payment", &payment),
                    condition: Some(Condition::NotExists),
                },
                WriteOp::Update {
                    key: keys::account(&p.tenant, &p.account),
                    updates,
                    condition: Some(Condition::eq("version", account.version)),
                },
            ];
            match self.table.transact_write(ops).await {
                Ok(()) => {
                    return Ok(PaymentOutcome::Applied {
                        applied_minor: applied,
                        balance_minor: balance,
                        settled,
                    })
                }
                Err(TableError::TransactionCanceled(f)) if f.first() == Some(&true) => {
                    return Ok(PaymentOutcome::Duplicate)
                }
                // The account changed under us: read it again.
                Err(TableError::TransactionCanceled(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(format!(
            "account {} keeps changing",
            p.account
        )))
    }
}
