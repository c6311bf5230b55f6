//! Export jobs and the reads an export streams. A job is claimed with a conditional update
//! (queued → running, or running with a lapsed lease), so a redelivered job message does not
//! export twice while the first run is alive, and one whose worker died is taken over.

use jiff::{SignedDuration, Timestamp};

use super::{from_item, keys, written, Decision, RepoError, Store};
use crate::domain::{AccountId, ContactAttempt, CreditNetted, Payment, TenantId};
use crate::export::{ExportJob, JobStatus, PaymentTime};
use crate::plans::Plan;
use crate::ports::table::{Condition, Query, SkRange, TableError, Update, GSI1};

/// How long a running job is left to its worker before another may take it over: longer than
/// the export function's 15-minute timeout.
pub const EXPORT_LEASE: SignedDuration = SignedDuration::from_mins(16);

/// The milliseconds of the claim, kept as a number so the lease condition compares numbers.
const CLAIMED_MS: &str = "claimed_ms";

/// An entry of the payments ledger as an export reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerEntry {
    /// A payment, with when cobro recorded it (`None` for a payment recorded before cobro
    /// kept the time).
    Payment {
        payment: Payment,
        recorded_at: Option<Timestamp>,
    },
    /// Credit a CRM statement moved: no money came in (`domain::credit`).
    Credit(CreditNetted),
}

/// One page of `payments_page`; `next` (its last entry's sort key and the cursor) reads the
/// page after it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentsPage {
    pub entries: Vec<LedgerEntry>,
    pub next: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExportClaim {
    /// This worker now runs the job; `claimed_ms` identifies its claim.
    Claimed {
        job: ExportJob,
        claimed_ms: i64,
    },
    /// Done or failed already: a repeated message, nothing to do.
    Finished(ExportJob),
    /// Another worker runs it and its lease has not lapsed.
    Busy,
    Missing,
}

fn status(s: JobStatus) -> serde_json::Value {
    serde_json::to_value(s).expect("enum")
}

impl Store {
    /// Records a new job; when the id exists already, returns the job as it is (`false`).
    pub async fn create_export_job(&self, job: &ExportJob) -> Result<(ExportJob, bool), RepoError> {
        self.create_once(
            keys::export_job(&job.tenant, &job.id),
            "export",
            &job.id,
            job,
        )
        .await
    }

    pub async fn export_job(&self, t: &TenantId, id: &str) -> Result<Option<ExportJob>, RepoError> {
        self.load(&keys::export_job(t, id)).await
    }

    pub async fn claim_export_job(
        &self,
        t: &TenantId,
        id: &str,
        now: Timestamp,
    ) -> Result<ExportClaim, RepoError> {
        let Some(job) = self.export_job(t, id).await? else {
            return Ok(ExportClaim::Missing);
        };
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            return Ok(ExportClaim::Finished(job));
        }
        let claimed_ms = now.as_millisecond();
        let lapsed = now
            .checked_sub(EXPORT_LEASE)
            .unwrap_or(Timestamp::MIN)
            .as_millisecond();
        let condition = Condition::Or(vec![
            Condition::eq("status", status(JobStatus::Queued)),
            Condition::And(vec![
                Condition::eq("status", status(JobStatus::Running)),
                Condition::lt(CLAIMED_MS, lapsed),
            ]),
        ]);
        let updates = vec![
            Update::set("status", status(JobStatus::Running)),
            Update::set("claimed_at", now.to_string()),
            Update::set(CLAIMED_MS, claimed_ms),
            Update::add("tries", 1),
        ];
        match self
            .table
            .update(&keys::export_job(t, id), updates, Some(condition))
            .await
        {
            Ok(item) => Ok(ExportClaim::Claimed {
                job: from_item(item)?,
                claimed_ms,
            }),
            Err(TableError::ConditionFailed) => match self.export_job(t, id).await? {
                Some(j) if matches!(j.status, JobStatus::Done | JobStatus::Failed) => {
                    Ok(ExportClaim::Finished(j))
                }
                Some(_) => Ok(ExportClaim::Busy),
                None => Ok(ExportClaim::Missing),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a run this worker still holds. `Ok(false)`: the claim was lost (taken over after
    /// its lease lapsed), so the other run's result stands.
    pub async fn end_export_job(
        &self,
        job: &ExportJob,
        claimed_ms: i64,
        now: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut updates = vec![
            Update::set("status", status(job.status)),
            Update::set("rows", job.rows),
            Update::set("bytes", job.bytes),
            Update::set(
                "totals",
                serde_json::to_value(&job.totals).expect("serializes"),
            ),
            Update::remove("claimed_at"),
            Update::remove(CLAIMED_MS),
        ];
        match &job.error {
            Some(e) => updates.push(Update::set("error", e.as_str())),
            None => updates.push(Update::remove("error")),
        }
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            updates.push(Update::set("finished_at", now.to_string()));
        }
        let condition = Condition::And(vec![
            Condition::eq("status", status(JobStatus::Running)),
            Condition::eq(CLAIMED_MS, claimed_ms),
        ]);
        written(
            self.table
                .update(
                    &keys::export_job(&job.tenant, &job.id),
                    updates,
                    Some(condition),
                )
                .await,
        )
    }

    /// One page of the ledger's entries paid (`by` `PaidAt`: the month index, GSI1) or
    /// recorded (`RecordedAt`: the recorded index) in `[from_ms, until_ms)` within one UTC
    /// month (`YYYY-MM`), oldest first: payments, each with when it was recorded (`None` for
    /// payments from before cobro kept it), and the credit CRM statements moved, at when they
    /// did. `after`: the previous page's `next`, the sort key of its last entry and its
    /// cursor. The range then starts at that entry's own index key, so
    /// each page is a short range read on either store rather than a walk from the period's
    /// start (the cursor alone leaves SQLite filtering every earlier entry again, which turns
    /// a million rows into hours); the range still holds the cursor's position, as DynamoDB
    /// requires.
    pub async fn payments_page(
        &self,
        t: &TenantId,
        by: PaymentTime,
        month: &str,
        (from_ms, until_ms): (i64, i64),
        limit: u32,
        after: Option<(String, String)>,
    ) -> Result<PaymentsPage, RepoError> {
        let upper = format!("{:015}#~", until_ms - 1);
        let (lower, cursor) = match after {
            Some((last_sk, cursor)) => (last_sk, Some(cursor)),
            None => (format!("{from_ms:015}"), None),
        };
        let range = SkRange::Between(lower, upper);
        let (q, sk) = match by {
            PaymentTime::PaidAt => (
                Query::index(GSI1, keys::gsi1_payments(t, month), range),
                GSI1.sk,
            ),
            PaymentTime::RecordedAt => (
                Query::table(keys::recorded_payments_pk(t, month), range),
                crate::ports::table::SK,
            ),
        };
        let page = self.table.query(q.limit(limit).after(cursor)).await?;
        let last_sk = page
            .items
            .last()
            .and_then(|i| i.get(sk))
            .and_then(|v| v.as_str())
            .map(String::from);
        let mut entries = Vec::with_capacity(page.items.len());
        for mut item in page.items {
            if super::kind_of(&item) == super::credit::KIND {
                entries.push(LedgerEntry::Credit(from_item(item)?));
                continue;
            }
            let recorded_at = match item.remove("recorded_at") {
                Some(v) => {
                    Some(serde_json::from_value(v).map_err(|e| RepoError::Corrupt(e.to_string()))?)
                }
                None => None,
            };
            entries.push(LedgerEntry::Payment {
                payment: from_item(item)?,
                recorded_at,
            });
        }
        Ok(PaymentsPage {
            entries,
            next: page.next.zip(last_sk).map(|(c, sk)| (sk, c)),
        })
    }

    pub async fn plans_of_account(
        &self,
        t: &TenantId,
        a: &AccountId,
    ) -> Result<Vec<Plan>, RepoError> {
        let q = Query::table(keys::account_pk(t, a), SkRange::BeginsWith("PLAN#".into()));
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn attempts_of_account(
        &self,
        t: &TenantId,
        a: &AccountId,
    ) -> Result<Vec<ContactAttempt>, RepoError> {
        let q = Query::table(
            keys::account_pk(t, a),
            SkRange::BeginsWith("ATTEMPT#".into()),
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// The account's decisions made in `[from_ms, until_ms)`, oldest first.
    pub async fn decisions_between(
        &self,
        t: &TenantId,
        a: &AccountId,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<Decision>, RepoError> {
        let range = SkRange::Between(
            format!("DECISION#{from_ms:015}"),
            format!("DECISION#{:015}#~", until_ms - 1),
        );
        let q = Query::table(keys::account_pk(t, a), range);
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}
