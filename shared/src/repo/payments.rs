//! Applying a confirmed payment: the payment record and the balance change commit together,
//! and the payment's id makes a second delivery a no-op.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::accounts::due_updates;
use super::{keys, to_item, RepoError, Store};
use crate::domain::{AccountId, AccountStatus, Currency, Money, Payment, PaymentId, TenantId};
use crate::plans::PlanStatus;
use crate::ports::table::{Condition, TableError, Update, WriteOp, DUE_INDEX, GSI1};

/// A payment was made: publish it (source `cobro`) for cobro to apply it to the account, once
/// per `payment_id` however often it arrives. `POST /v1/payments` publishes the same event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentConfirmed {
    pub tenant: TenantId,
    pub account: AccountId,
    pub payment_id: PaymentId,
    /// Minor units of `currency`; positive.
    pub amount_minor: i64,
    pub currency: Currency,
    /// When it was paid: at most 5 minutes after cobro's clock, or the payment is kept in
    /// suspense (not applied) until it is sent again with the time it was paid.
    pub paid_at: Timestamp,
    #[serde(default = "unknown")]
    pub method: String,
    #[serde(default = "unknown")]
    pub source: String,
}

fn unknown() -> String {
    "unknown".into()
}

/// How far ahead of cobro's clock a `paid_at` may be: a provider's or CRM's clock runs a little
/// ahead. A later one (a typo, a debit scheduled for next month) is refused: the account would
/// leave the due index until then, and the payment be filed in that month's ledger.
pub const PAID_AT_LEEWAY: SignedDuration = SignedDuration::from_mins(5);

/// `paid_at` later than `now` allows: why, naming the field; `None` when it is fine.
pub fn paid_at_too_late(paid_at: Timestamp, now: Timestamp) -> Option<String> {
    (paid_at > now + PAID_AT_LEEWAY).then(|| {
        format!(
            "`paid_at` {paid_at} is in the future (now {now}; at most {} minutes ahead)",
            PAID_AT_LEEWAY.as_mins()
        )
    })
}

/// A payment id's record, once per tenant (`keys::payment_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(super) enum PaymentIdState {
    /// In suspense: the sort key of its entry, to mark it resolved if it is applied later.
    Suspended { entry: String },
    Applied {
        account: AccountId,
        recorded_at: Timestamp,
    },
}

const STATE: &str = "state";
/// When cobro recorded (applied) a payment, kept on its items: the daily feed's time.
pub(super) const RECORDED_AT: &str = "recorded_at";

/// What applying a payment did, kept on the payment's item: a redelivery finds the payment
/// applied and announces what it did again (a publish that failed the first time is not lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedOutcome {
    applied_minor: i64,
    balance_minor: i64,
    settled: bool,
    credit_minor: i64,
    plan: Option<(String, PlanStatus)>,
    promise_kept: bool,
}

const OUTCOME: &str = "outcome";

impl From<AppliedOutcome> for PaymentOutcome {
    fn from(o: AppliedOutcome) -> Self {
        PaymentOutcome::Applied {
            applied_minor: o.applied_minor,
            balance_minor: o.balance_minor,
            settled: o.settled,
            credit_minor: o.credit_minor,
            plan: o.plan,
            promise_kept: o.promise_kept,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Applied {
        applied_minor: i64,
        balance_minor: i64,
        settled: bool,
        /// Paid beyond what was owed, kept on the account as a credit.
        credit_minor: i64,
        /// The plan it was allocated to, and the plan's state after it.
        plan: Option<(String, PlanStatus)>,
        /// It completed what the debtor promised to pay.
        promise_kept: bool,
    },
    /// This payment id was applied before: nothing changed.
    Duplicate,
    /// This payment id was applied to another account of the tenant (`account`): not applied
    /// here. One payment is applied once; it is listed in the tenant's suspense list (once per
    /// account it was sent for) so that a person decides which account it was for.
    AppliedElsewhere { account: AccountId },
    /// It cannot be applied (an unknown account, another currency, a `paid_at` ahead of
    /// cobro's clock): kept in the tenant's suspense list with the reason, never dropped.
    Suspense { reason: String },
    /// Not a payment to apply (a provider's event of another kind, an unpaid session).
    Ignored { reason: String },
}

/// A payment in suspense, as listed for the CRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspendedPayment {
    pub payment: PaymentConfirmed,
    pub reason: String,
    /// When it was put in suspense.
    pub at: Timestamp,
    /// Set once the payment was applied after all (its account imported, a corrected
    /// delivery): it stays listed, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
    /// The account this payment id was applied to already, when that is why it is here (it
    /// was sent for another): it is not applied again, and nothing resolves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_to: Option<AccountId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The account it was applied to.
    pub account: AccountId,
    pub at: Timestamp,
}

/// A payment's item, on GSI1 under its month so the exports find the payments of a period.
fn payment_item(
    key: crate::ports::Key,
    payment: &Payment,
    recorded_at: Timestamp,
) -> crate::ports::Item {
    let mut item = to_item(key, "payment", payment);
    item.insert(RECORDED_AT.into(), recorded_at.to_string().into());
    item.extend(
        month_index(payment)
            .into_iter()
            .map(|(attr, value)| (attr.to_string(), value.into())),
    );
    item
}

/// A payment's key on GSI1: the month of its `paid_at`, then when and which.
pub(super) fn month_index(payment: &Payment) -> [(&'static str, String); 2] {
    let month = payment.paid_at.strftime("%Y-%m").to_string();
    [
        (GSI1.pk, keys::gsi1_payments(&payment.tenant, &month)),
        (
            GSI1.sk,
            keys::gsi1_payment_sk(
                payment.paid_at.as_millisecond(),
                &payment.account,
                payment.id.as_str(),
            ),
        ),
    ]
}

/// The same payment on the recorded index, whole, so the daily feed reads it there.
pub(super) fn recorded_copy(payment: &Payment, recorded_at: Timestamp) -> crate::ports::Item {
    let mut item = to_item(
        keys::recorded_payment(
            &payment.tenant,
            recorded_at,
            &payment.account,
            payment.id.as_str(),
        ),
        "payment_recorded",
        payment,
    );
    item.insert(RECORDED_AT.into(), recorded_at.to_string().into());
    item
}

impl Store {
    /// Keeps a payment that cannot be applied, once per payment id: the tenant's payment-id
    /// record says it is in suspense (and where), unless the id is known already.
    async fn suspend(
        &self,
        p: &PaymentConfirmed,
        reason: String,
        now: Timestamp,
    ) -> Result<PaymentOutcome, RepoError> {
        let entry = SuspendedPayment {
            payment: p.clone(),
            reason: reason.clone(),
            at: now,
            resolved: None,
            applied_to: None,
        };
        let key = keys::suspense(&p.tenant, now.as_millisecond(), p.payment_id.as_str());
        let state = PaymentIdState::Suspended {
            entry: key.sk.clone(),
        };
        let ops = vec![
            WriteOp::Put {
                item: to_item(
                    keys::payment_id(&p.tenant, p.payment_id.as_str()),
                    "payment_id",
                    &state,
                ),
                condition: Some(Condition::NotExists),
            },
            // Suspended before the payment-id record existed: already listed.
            WriteOp::Check {
                key: keys::suspended_id(&p.tenant, p.payment_id.as_str()),
                condition: Condition::NotExists,
            },
            WriteOp::Put {
                item: to_item(key, "suspended_payment", &entry),
                condition: None,
            },
        ];
        match self.table.transact_write(ops).await {
            Ok(()) => {
                tracing::warn!(tenant = %p.tenant, payment = %p.payment_id, %reason, "payment in suspense");
                Ok(PaymentOutcome::Suspense { reason })
            }
            Err(TableError::TransactionCanceled(failed)) if failed.iter().any(|f| *f) => {
                Ok(PaymentOutcome::Duplicate)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Lists a payment whose id was applied to `applied_to`, another account, in suspense: once
    /// per account it was sent for, however often it is delivered. The id's record is left as
    /// it is (applied there), so the payment is not applied here.
    async fn suspend_applied_elsewhere(
        &self,
        p: &PaymentConfirmed,
        applied_to: &AccountId,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let reason = format!(
            "payment id `{}` was applied to account `{applied_to}` already; not applied to `{}`",
            p.payment_id, p.account
        );
        let entry = SuspendedPayment {
            payment: p.clone(),
            reason: reason.clone(),
            at: now,
            resolved: None,
            applied_to: Some(applied_to.clone()),
        };
        let key = keys::suspense_elsewhere(
            &p.tenant,
            now.as_millisecond(),
            p.payment_id.as_str(),
            &p.account,
        );
        let marker = to_item(
            keys::payment_id_elsewhere(&p.tenant, p.payment_id.as_str(), &p.account),
            "payment_id_elsewhere",
            &serde_json::json!({ "applied_to": applied_to, "entry": key.sk }),
        );
        let ops = vec![
            WriteOp::Put {
                item: marker,
                condition: Some(Condition::NotExists),
            },
            WriteOp::Put {
                item: to_item(key, "suspended_payment", &entry),
                condition: None,
            },
        ];
        match self.table.transact_write(ops).await {
            Ok(()) => {
                tracing::warn!(tenant = %p.tenant, payment = %p.payment_id, account = %p.account, %applied_to, "payment id already applied to another account: in suspense");
                Ok(())
            }
            // Listed already: a redelivery.
            Err(TableError::TransactionCanceled(failed)) if failed.first() == Some(&true) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The account this payment id was applied to in the tenant, if it was applied.
    pub async fn payment_applied_to(
        &self,
        t: &TenantId,
        id: &PaymentId,
    ) -> Result<Option<AccountId>, RepoError> {
        Ok(match self.payment_id_state(t, id).await? {
            Some(PaymentIdState::Applied { account, .. }) => Some(account),
            _ => None,
        })
    }

    pub(super) async fn payment_id_state(
        &self,
        t: &TenantId,
        id: &PaymentId,
    ) -> Result<Option<PaymentIdState>, RepoError> {
        self.table
            .get(&keys::payment_id(t, id.as_str()))
            .await?
            .map(super::from_item)
            .transpose()
    }

    /// The tenant's payments in suspense, oldest first.
    pub async fn suspended_payments(
        &self,
        t: &TenantId,
    ) -> Result<Vec<SuspendedPayment>, RepoError> {
        let q = crate::ports::Query::table(format!("T#{t}#SUSPENSE"), crate::ports::SkRange::All);
        self.query_all(q)
            .await?
            .into_iter()
            .map(super::from_item)
            .collect()
    }

    /// The payment as it was first applied, and what applying it did (`Applied`), for a
    /// redelivery to announce again; `None` when it was not applied, or was applied before
    /// outcomes were kept. The payment comes from what was stored, not from the redelivery:
    /// a provider's second event for one payment can differ in its time or method (Stripe's
    /// session and payment intent), and a CRM's retry without `paid_at` in its time.
    pub async fn applied_payment(
        &self,
        p: &PaymentConfirmed,
    ) -> Result<Option<(PaymentConfirmed, PaymentOutcome)>, RepoError> {
        let key = keys::payment(&p.tenant, &p.account, p.payment_id.as_str());
        let Some(mut item) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let Some(outcome) = item.remove(OUTCOME) else {
            return Ok(None);
        };
        let outcome: AppliedOutcome =
            serde_json::from_value(outcome).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let first: Payment = super::from_item(item)?;
        let first = PaymentConfirmed {
            tenant: first.tenant,
            account: first.account,
            payment_id: first.id,
            amount_minor: first.amount.minor,
            currency: first.amount.currency,
            paid_at: first.paid_at,
            method: first.method,
            source: first.source,
        };
        Ok(Some((first, outcome.into())))
    }

    /// Applies the payment as of `now` (cobro's clock): the account's next decision is due
    /// from then, and the payment is recorded then (the daily ledger feed's time).
    pub async fn apply_payment(
        &self,
        p: &PaymentConfirmed,
        now: Timestamp,
    ) -> Result<PaymentOutcome, RepoError> {
        if p.amount_minor <= 0 {
            return Err(RepoError::Invalid("amount_minor must be positive".into()));
        }
        if p.amount_minor > crate::domain::MAX_MINOR {
            return Err(RepoError::Invalid(format!(
                "amount_minor must be at most {}",
                crate::domain::MAX_MINOR
            )));
        }
        let payment_key = keys::payment(&p.tenant, &p.account, p.payment_id.as_str());
        // Concurrent payments to one account conflict on its version; each retry reads it
        // again, a little later each time so that a crowd of them spreads out.
        for attempt in 0..10u64 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(3 * attempt)).await;
            }
            if self.table.get(&payment_key).await?.is_some() {
                return Ok(PaymentOutcome::Duplicate);
            }
            // The id once per tenant: applied to another account, it is not applied again.
            let known = self.payment_id_state(&p.tenant, &p.payment_id).await?;
            match &known {
                Some(PaymentIdState::Applied { account, .. }) if *account == p.account => {
                    return Ok(PaymentOutcome::Duplicate)
                }
                Some(PaymentIdState::Applied { account, .. }) => {
                    self.suspend_applied_elsewhere(p, account, now).await?;
                    return Ok(PaymentOutcome::AppliedElsewhere {
                        account: account.clone(),
                    });
                }
                _ => {}
            }
            // Kept, not applied: the CRM sees why in the suspense list, and a delivery with
            // the right time applies it then.
            if let Some(reason) = paid_at_too_late(p.paid_at, now) {
                return self.suspend(p, reason, now).await;
            }
            let Some(account) = self.account(&p.tenant, &p.account).await? else {
                return self
                    .suspend(p, format!("no account `{}`", p.account), now)
                    .await;
            };
            if account.currency != p.currency {
                return self
                    .suspend(
                        p,
                        format!(
                            "payment in {} for an account in {}",
                            p.currency, account.currency
                        ),
                        now,
                    )
                    .await;
            }
            // An overpayment is recorded whole; only what was owed reduces the balance, and
            // the rest is kept as a credit.
            let mut applied = p.amount_minor.min(account.balance_minor);
            let mut balance = account.balance_minor - applied;
            let mut credit = p.amount_minor - applied;
            // A running plan takes the payment, oldest instalment first.
            let mut plan = match &account.plan {
                Some(r) => self
                    .plan(&p.tenant, &p.account, &r.id)
                    .await?
                    .filter(|plan| plan.is_running()),
                None => None,
            };
            let mut forgiven = 0;
            if let Some(plan) = plan.as_mut() {
                let beyond_plan = plan.allocate(p.amount_minor);
                // A completed settlement forgives the rest, up to the discount it agreed: a
                // plain plan forgives nothing, and what the CRM added to the balance since
                // (a fee) stays owed either way.
                if plan.status == PlanStatus::Completed && plan.terms.discount_minor > 0 {
                    let to_plan = (p.amount_minor - beyond_plan).min(account.balance_minor);
                    let mut remaining = account.balance_minor - to_plan;
                    forgiven = remaining.min(plan.terms.discount_minor);
                    remaining -= forgiven;
                    // Paid beyond the settlement: the excess pays what is still owed, and the
                    // rest is the debtor's credit, so applied and forgiven add up to the
                    // balance.
                    let spare = p.amount_minor - to_plan;
                    let extra = spare.min(remaining);
                    applied = to_plan + extra;
                    credit = spare - extra;
                    balance = remaining - extra;
                }
            }
            // Settled by this payment: an account already at zero is not settled again (a later
            // payment is all credit, and announces no second settlement).
            let settled = balance == 0 && account.balance_minor > 0;
            let payment = Payment {
                tenant: p.tenant.clone(),
                account: p.account.clone(),
                id: p.payment_id.clone(),
                amount: Money::new(p.amount_minor, p.currency),
                paid_at: p.paid_at,
                method: p.method.clone(),
                source: p.source.clone(),
                applied_minor: applied,
                forgiven_minor: forgiven.max(0),
            };
            let mut updates = vec![
                Update::set("balance_minor", balance),
                Update::add("version", 1),
            ];
            if credit > 0 {
                updates.push(Update::add("credit_minor", credit));
            }
            // A promise standing when the payment was made counts it; reaching the promised
            // amount keeps it.
            let mut promise_kept = false;
            if let Some(promise) = &account.promise {
                let mut promise = promise.clone();
                promise.paid_minor += p.amount_minor;
                if promise.paid_minor >= promise.amount_minor || settled {
                    promise_kept = true;
                    updates.push(Update::remove("promise"));
                } else {
                    updates.push(Update::set(
                        "promise",
                        serde_json::to_value(&promise).expect("serializes"),
                    ));
                }
            }
            let mut plan_ops = Vec::new();
            if let Some(plan) = &plan {
                match plan.reference() {
                    Some(r) if !settled => {
                        updates.push(Update::set("plan", serde_json::to_value(r).expect("ref")));
                        // Decided again at the next tick, for the next instalment: from now, not
                        // from `paid_at`, which a provider may report late.
                        updates.extend(due_updates(
                            &p.tenant,
                            &p.account,
                            Some(now),
                            &format!("ACCOUNT#{}", p.account),
                        ));
                    }
                    _ => {
                        updates.push(Update::remove("plan"));
                        if !settled {
                            // Paid off with something still owed: the reminders go back to the
                            // whole debt, decided at the next tick.
                            updates.extend(due_updates(
                                &p.tenant,
                                &p.account,
                                Some(now),
                                &format!("ACCOUNT#{}", p.account),
                            ));
                        }
                    }
                }
                plan_ops.push(WriteOp::Put {
                    item: super::plans::plan_item(plan),
                    condition: Some(Condition::Exists),
                });
            }
            if settled {
                // Settled: no more reminders, so off the due index in the same write. An account
                // the creditor closed (written off, sold) keeps the creditor's status.
                if account.status != AccountStatus::Closed {
                    let status = serde_json::to_value(AccountStatus::Settled).expect("enum");
                    updates.push(Update::Set("status".into(), status));
                }
                updates.push(Update::remove(DUE_INDEX.pk));
                updates.push(Update::remove(DUE_INDEX.sk));
                updates.push(Update::remove("next_action_at"));
            }
            let outcome = AppliedOutcome {
                applied_minor: applied,
                balance_minor: balance,
                settled,
                credit_minor: credit,
                plan: plan.as_ref().map(|pl| (pl.id.clone(), pl.status)),
                promise_kept,
            };
            let mut item = payment_item(payment_key.clone(), &payment, now);
            item.insert(
                OUTCOME.into(),
                serde_json::to_value(&outcome).expect("serializes"),
            );
            let recorded = recorded_copy(&payment, now);
            let applied_state = PaymentIdState::Applied {
                account: p.account.clone(),
                recorded_at: now,
            };
            let mut ops = vec![
                WriteOp::Put {
                    item,
                    condition: Some(Condition::NotExists),
                },
                WriteOp::Update {
                    key: keys::account(&p.tenant, &p.account),
                    updates,
                    condition: Some(Condition::eq("version", account.version)),
                },
                // Absent, or still in suspense as read: a concurrent apply of the same id to
                // another account fails here, and the next round finds where it went.
                WriteOp::Put {
                    item: to_item(
                        keys::payment_id(&p.tenant, p.payment_id.as_str()),
                        "payment_id",
                        &applied_state,
                    ),
                    condition: Some(match &known {
                        Some(PaymentIdState::Suspended { .. }) => Condition::eq(STATE, "suspended"),
                        _ => Condition::NotExists,
                    }),
                },
                WriteOp::Put {
                    item: recorded,
                    condition: None,
                },
            ];
            if let Some(PaymentIdState::Suspended { entry }) = &known {
                let key = crate::ports::Key::new(keys::suspense_pk(&p.tenant), entry.clone());
                // An entry someone removed has nothing to resolve.
                if self.table.get(&key).await?.is_some() {
                    let resolved = Resolved {
                        account: p.account.clone(),
                        at: now,
                    };
                    ops.push(WriteOp::Update {
                        key,
                        updates: vec![Update::set(
                            "resolved",
                            serde_json::to_value(&resolved).expect("serializes"),
                        )],
                        condition: Some(Condition::Exists),
                    });
                }
            }
            ops.extend(plan_ops);
            match self.table.transact_write(ops).await {
                Ok(()) => return Ok(outcome.into()),
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
