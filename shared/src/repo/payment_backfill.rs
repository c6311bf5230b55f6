//! Backfill of payments stored before cobro kept, per payment, the tenant-wide payment-id
//! record (`PAYID`: one account per payment id), `recorded_at` with its entry on the recorded
//! index (the daily ledger feed) and, older still, the month index (`gsi1`, the period
//! ledger). Without them the cross-account check and the exports miss those payments.
//!
//! It walks the tenant's debtors (their directory, paged), each debtor's accounts (the debtor's
//! index) and each account's `PAYMENT#` items: queries only, like an export. It writes only
//! what is missing, each with a condition that it is still missing, so it never overwrites and
//! running it again (or after an interruption) writes nothing twice.

use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashMap;

use super::payments::{month_index, recorded_copy, PaymentIdState, RECORDED_AT};
use super::{from_item, keys, to_item, RepoError, Store};
use crate::domain::{AccountId, DebtorId, Payment, TenantId};
use crate::ports::table::{Condition, Query, SkRange, TableError, Update, WriteOp, GSI1};
use crate::ports::Item;

/// Debtors read per page of the directory.
const DEBTORS_PER_PAGE: u32 = 100;

/// How a backfill runs.
#[derive(Debug, Clone, Default)]
pub struct BackfillOptions {
    /// Count what would be written, write nothing.
    pub dry_run: bool,
    /// Start after this debtor (by id, as the directory sorts): the `last_debtor` of a run that
    /// stopped.
    pub after_debtor: Option<DebtorId>,
}

/// What a backfill found and wrote (with `dry_run`: would write).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PaymentBackfill {
    pub tenant: String,
    pub dry_run: bool,
    pub debtors: u64,
    pub accounts: u64,
    pub payments: u64,
    /// `PAYID` records written (`applied` to the payment's account).
    pub markers_written: u64,
    /// Payments given a `recorded_at`.
    pub recorded_at_written: u64,
    /// …of which with their `paid_at`, no time of applying being known.
    pub recorded_at_from_paid_at: u64,
    /// Entries written on the recorded index (`T#<t>#RECORDED#<YYYY-MM>`).
    pub recorded_index_written: u64,
    /// Payments put on the month index (`gsi1`).
    pub month_index_written: u64,
    /// Payments that had everything already.
    pub complete: u64,
    /// Payments whose id's record says something else (applied to another account, or in
    /// suspense): left as they are, for a person.
    pub conflicts: Vec<BackfillConflict>,
    /// The last debtor whose payments were all walked: where `after_debtor` resumes.
    pub last_debtor: Option<DebtorId>,
    /// The records a dry run would have written, so that it finds the conflicts a real run
    /// would (a real run reads them back from the store).
    #[serde(skip)]
    written: HashMap<String, (AccountId, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillConflict {
    pub account: AccountId,
    pub payment_id: String,
    pub detail: String,
}

/// A backfill that stopped on an error, with what it had done: resume after `last_debtor`.
#[derive(Debug, thiserror::Error)]
#[error("the payment backfill stopped ({error}); resume after debtor {resume}", resume = .so_far.last_debtor.as_ref().map_or("(none: from the start)".to_string(), |d| format!("`{d}`")))]
pub struct BackfillStopped {
    pub so_far: PaymentBackfill,
    pub error: RepoError,
}

impl Store {
    /// Gives the tenant's payments stored the old way their payment-id record, `recorded_at`
    /// (with its recorded-index entry) and month-index keys, where missing.
    ///
    /// `recorded_at`, when a payment has none, is the time its payment-id record says it was
    /// applied, if it has one; else its `paid_at`. Not the time of the backfill: that would put
    /// every old payment in the next daily file, and finance would count them twice. Before the
    /// recorded index, the daily file selected on `paid_at`, so a payment was in the daily file
    /// of its `paid_at`'s day: with `recorded_at = paid_at` it stays on that day.
    pub async fn backfill_payments(
        &self,
        t: &TenantId,
        options: &BackfillOptions,
    ) -> Result<PaymentBackfill, BackfillStopped> {
        let mut done = PaymentBackfill {
            tenant: t.to_string(),
            dry_run: options.dry_run,
            ..Default::default()
        };
        let range = match &options.after_debtor {
            Some(d) => SkRange::Gt(format!("DEBTOR#{d}")),
            None => SkRange::BeginsWith("DEBTOR#".into()),
        };
        let mut cursor = None;
        loop {
            let q = Query::table(keys::debtor_directory_pk(t), range.clone())
                .limit(DEBTORS_PER_PAGE)
                .after(cursor.take());
            let page = match self.table.query(q).await {
                Ok(page) => page,
                Err(e) => return Err(stopped(done, e.into())),
            };
            for item in &page.items {
                let debtor = match item.get("debtor").and_then(|v| v.as_str()) {
                    Some(raw) => DebtorId::parse(raw)
                        .map_err(|e| RepoError::Corrupt(format!("debtor directory: {e}"))),
                    None => Err(RepoError::Corrupt(
                        "a debtor directory entry without `debtor`".into(),
                    )),
                };
                let result = match debtor {
                    Ok(d) => self
                        .backfill_debtor(t, &d, options.dry_run, &mut done)
                        .await
                        .map(|()| d),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(d) => {
                        done.debtors += 1;
                        done.last_debtor = Some(d);
                    }
                    Err(e) => return Err(stopped(done, e)),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(done),
            }
        }
    }

    async fn backfill_debtor(
        &self,
        t: &TenantId,
        d: &DebtorId,
        dry_run: bool,
        done: &mut PaymentBackfill,
    ) -> Result<(), RepoError> {
        for account in self.accounts_of_debtor(t, d).await? {
            done.accounts += 1;
            let q = Query::table(
                keys::account_pk(t, &account.id),
                SkRange::BeginsWith("PAYMENT#".into()),
            );
            for item in self.query_all(q).await? {
                done.payments += 1;
                self.backfill_payment(item, dry_run, done).await?;
            }
        }
        Ok(())
    }

    async fn backfill_payment(
        &self,
        mut item: Item,
        dry_run: bool,
        done: &mut PaymentBackfill,
    ) -> Result<(), RepoError> {
        let stored_recorded_at: Option<Timestamp> = match item.remove(RECORDED_AT) {
            Some(v) => {
                Some(serde_json::from_value(v).map_err(|e| RepoError::Corrupt(e.to_string()))?)
            }
            None => None,
        };
        let indexed = item.contains_key(GSI1.pk);
        let key = crate::ports::Key::of(&item)
            .ok_or_else(|| RepoError::Corrupt("a payment without its key".into()))?;
        let payment: Payment = from_item(item)?;
        let conflict = |detail: String| BackfillConflict {
            account: payment.account.clone(),
            payment_id: payment.id.to_string(),
            detail,
        };
        let mut wrote = false;

        // The payment id's record: written when absent, never changed.
        let state = match self.payment_id_state(&payment.tenant, &payment.id).await? {
            Some(state) => Some(state),
            None => done
                .written
                .get(payment.id.as_str())
                .map(|(account, recorded_at)| PaymentIdState::Applied {
                    account: account.clone(),
                    recorded_at: *recorded_at,
                }),
        };
        let known_recorded_at = match &state {
            None => None,
            Some(PaymentIdState::Applied {
                account,
                recorded_at,
            }) if *account == payment.account => Some(*recorded_at),
            Some(PaymentIdState::Applied { account, .. }) => {
                done.conflicts.push(conflict(format!(
                    "the payment id is applied to account `{account}` too (both applied before cobro kept one account per payment id); left as it is"
                )));
                None
            }
            Some(PaymentIdState::Suspended { entry }) => {
                done.conflicts.push(conflict(format!(
                    "the payment id is in suspense (entry `{entry}`) though it was applied to this account; left as it is: delivered again for the account in suspense, it would be applied there too"
                )));
                None
            }
        };
        let recorded_at = stored_recorded_at
            .or(known_recorded_at)
            .unwrap_or(payment.paid_at);
        if state.is_none() {
            let record = PaymentIdState::Applied {
                account: payment.account.clone(),
                recorded_at,
            };
            let item = to_item(
                keys::payment_id(&payment.tenant, payment.id.as_str()),
                "payment_id",
                &record,
            );
            if !dry_run {
                match self.table.put(item, Some(Condition::NotExists)).await {
                    Ok(()) => {}
                    // Written meanwhile (a delivery of the same id): that one stands.
                    Err(TableError::ConditionFailed) => {
                        done.conflicts.push(conflict(
                            "the payment id's record was written while backfilling; run the backfill again to check it".into(),
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            done.markers_written += 1;
            if dry_run {
                done.written.insert(
                    payment.id.to_string(),
                    (payment.account.clone(), recorded_at),
                );
            }
            wrote = true;
        }

        // `recorded_at` and the month index on the payment, its entry on the recorded index.
        let mut updates = Vec::new();
        if stored_recorded_at.is_none() {
            updates.push(Update::set(RECORDED_AT, recorded_at.to_string()));
        }
        if !indexed {
            updates.extend(
                month_index(&payment)
                    .into_iter()
                    .map(|(attr, value)| Update::set(attr, value)),
            );
        }
        let copy = recorded_copy(&payment, recorded_at);
        let copy_key = crate::ports::Key::of(&copy).expect("a keyed item");
        let copy_missing = self.table.get(&copy_key).await?.is_none();
        let mut ops = Vec::new();
        if !updates.is_empty() {
            let mut unchanged = vec![Condition::Exists];
            if stored_recorded_at.is_none() {
                unchanged.push(Condition::AttrNotExists(RECORDED_AT.into()));
            }
            if !indexed {
                unchanged.push(Condition::AttrNotExists(GSI1.pk.into()));
            }
            ops.push(WriteOp::Update {
                key,
                updates,
                condition: Some(Condition::And(unchanged)),
            });
        }
        if copy_missing {
            ops.push(WriteOp::Put {
                item: copy,
                condition: Some(Condition::NotExists),
            });
        }
        if !ops.is_empty() {
            if !dry_run {
                match self.table.transact_write(ops).await {
                    Ok(()) => {}
                    Err(TableError::TransactionCanceled(_)) => {
                        done.conflicts.push(conflict(
                            "the payment changed while backfilling; run the backfill again to finish it".into(),
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if stored_recorded_at.is_none() {
                done.recorded_at_written += 1;
                if known_recorded_at.is_none() {
                    done.recorded_at_from_paid_at += 1;
                }
            }
            if !indexed {
                done.month_index_written += 1;
            }
            if copy_missing {
                done.recorded_index_written += 1;
            }
            wrote = true;
        }
        if !wrote {
            done.complete += 1;
        }
        Ok(())
    }
}

fn stopped(so_far: PaymentBackfill, error: RepoError) -> BackfillStopped {
    BackfillStopped { so_far, error }
}
