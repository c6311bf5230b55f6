//! The reminders tick: finds what is due through the sparse due index, decides each account
//! (contact, wait or stop, always with a reason), commits the decision, and puts one message per
//! decision on the outbound queue. Safe to run twice: a decision's id is deterministic and is
//! committed once.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::sync::Arc;
use tracing::Instrument;

use cobro::collect::{Decider, Verdict};
use cobro::domain::{Account, AttemptStatus, ContactAttempt, Tenant};
use cobro::events::{DomainEvent, PlanBroken, PromiseBroken};
use cobro::outbound::OutboundMessage;
use cobro::ports::queue::{send_all, MAX_SEND_BATCH};
use cobro::ports::{Bus, Clock, Item, Outgoing, Queue};
use cobro::repo::{keys, Announcement, Decision, DueEntry, LoggedContact, RepoError, Store, KIND};

/// How long an outbox entry waits for the sender before a tick enqueues it again.
pub const OUTBOX_RETRY: SignedDuration = SignedDuration::from_mins(10);
/// Due items read per shard and tick: bounds one invocation's work; the rest waits for the next.
pub const MAX_PER_SHARD: u32 = 500;
/// How long an item a tick failed to decide waits before it is tried again: one tick at the
/// default rate, doubled at each failure in a row up to `RETRY_MAX`. Moving it on keeps an item
/// that keeps failing from taking a place among the first `MAX_PER_SHARD` at every tick.
pub const RETRY_FIRST: SignedDuration = SignedDuration::from_mins(5);
pub const RETRY_MAX: SignedDuration = SignedDuration::from_hours(1);

pub struct Reminders {
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub decider: Decider,
    /// Where `PlanBroken` and `PromiseBroken` go; `None` publishes nothing (benchmarks).
    pub bus: Option<Arc<dyn Bus>>,
}

/// What one tick did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub contacted: u32,
    pub deferred: u32,
    pub stopped: u32,
    /// Decisions committed before (a repeated tick): nothing new was sent.
    pub already_decided: u32,
    /// Outbox entries the sender had not finished, enqueued again.
    pub requeued: u32,
    /// Items left for the next tick because they changed while being decided.
    pub conflicts: u32,
    /// Events a failed publish had left on the outbox, published now.
    pub announced: u32,
    /// Items (or whole shards, when reading one failed) an error left for a later tick.
    pub failed: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Store(#[from] RepoError),
    #[error("the outbound queue failed: {0}")]
    Queue(#[from] cobro::ports::QueueError),
    #[error("the event bus failed: {0}")]
    Bus(String),
    /// The pass went through, except for `report.failed` items, each logged and tried again
    /// later; `first` is the first error, scrubbed of personal data.
    #[error("due items failed: {}, each tried again later; the first: {first}", .report.failed)]
    Items { report: TickReport, first: String },
}

/// A tick's progress: what it did, the messages not sent yet, and its first failure.
#[derive(Default)]
struct Pass {
    report: TickReport,
    // One buffer for the whole tick, sent in full batches of ten as it fills: SQS bills per
    // request, and a batch per shard would send many part-empty ones. Holding messages a little
    // longer loses nothing: each decision is already on the outbox.
    outgoing: Vec<Outgoing>,
    first_error: Option<String>,
}

impl Pass {
    /// Counts a failure; the first one's text goes into the tick's error.
    fn failed(&mut self, error: String) {
        self.report.failed += 1;
        cobro::metrics::count(cobro::metrics::DUE_ITEMS_FAILED, 1);
        self.first_error.get_or_insert(error);
    }

    fn finish(self) -> Result<TickReport, TickError> {
        match self.first_error {
            None => {
                tracing::info!(report = ?self.report, "reminders tick done");
                Ok(self.report)
            }
            Some(first) => {
                tracing::error!(report = ?self.report, "reminders tick done, with failures");
                Err(TickError::Items {
                    report: self.report,
                    first,
                })
            }
        }
    }
}

impl Reminders {
    /// Decides everything due, tenant by tenant. An item that fails is logged, counted and
    /// moved later, and the pass goes on: items are read oldest first, so one that kept failing
    /// would otherwise stop every item and tenant after it, at every tick. The tick still
    /// fails at the end (`TickError::Items`), so the invocation counts as an error and alarms.
    pub async fn tick(&self) -> Result<TickReport, TickError> {
        let now = self.clock.now();
        let mut pass = Pass::default();
        for tenant in self.store.tenants().await? {
            // The tenant's name on each line logged while deciding for it.
            let span = cobro::logs::for_tenant(&tenant.id);
            self.tick_tenant(&tenant, now, &mut pass)
                .instrument(span)
                .await?;
        }
        send_all(self.queue.as_ref(), std::mem::take(&mut pass.outgoing)).await?;
        pass.finish()
    }

    /// One tenant's due items. Only a queue failure ends the tick early: it is no item's
    /// fault, and what it did not send is on the outbox, enqueued again by a later tick.
    async fn tick_tenant(
        &self,
        tenant: &Tenant,
        now: Timestamp,
        pass: &mut Pass,
    ) -> Result<(), TickError> {
        for shard in 0..keys::DUE_SHARDS {
            let items = match self
                .store
                .due_items(&tenant.id, shard, now, MAX_PER_SHARD)
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    let error = cobro::logs::scrub(&e.to_string());
                    tracing::error!(tenant = %tenant.id, shard, %error, "reading due items failed");
                    pass.failed(error);
                    continue;
                }
            };
            for item in items {
                self.try_item(tenant, item, now, pass).await;
                if pass.outgoing.len() >= MAX_SEND_BATCH {
                    let full = pass.outgoing.len() - pass.outgoing.len() % MAX_SEND_BATCH;
                    let rest = pass.outgoing.split_off(full);
                    send_all(
                        self.queue.as_ref(),
                        std::mem::replace(&mut pass.outgoing, rest),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Decides one item; when that fails, the failure is kept and the item moved later.
    async fn try_item(&self, tenant: &Tenant, item: Item, now: Timestamp, pass: &mut Pass) {
        let entry = DueEntry::of(&item);
        let kind = item
            .get(KIND)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let Err(e) = self
            .handle_item(
                tenant,
                &kind,
                item,
                now,
                &mut pass.report,
                &mut pass.outgoing,
            )
            .await
        else {
            return;
        };
        // Error texts can quote stored data: scrubbed, as any text from elsewhere.
        let error = cobro::logs::scrub(&e.to_string());
        let account = entry.as_ref().map_or("", DueEntry::account);
        tracing::error!(tenant = %tenant.id, account, kind, %error, "due item failed; the pass goes on");
        pass.failed(error);
        if let Some(entry) = entry {
            self.postpone(&entry, now).await;
        }
    }

    /// Moves a failed item `RETRY_FIRST`, `2 × RETRY_FIRST` … later. Failing that, it stays
    /// where it is: the next tick tries it again.
    async fn postpone(&self, entry: &DueEntry, now: Timestamp) {
        let at = now
            .saturating_add(retry_after(entry.failures))
            .expect("in range");
        if let Err(e) = self.store.postpone_due(entry, at).await {
            let error = cobro::logs::scrub(&e.to_string());
            tracing::error!(account = entry.account(), %error, "moving a failed item later failed");
        }
    }

    async fn handle_item(
        &self,
        tenant: &Tenant,
        kind: &str,
        item: Item,
        now: Timestamp,
        report: &mut TickReport,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), TickError> {
        let value = serde_json::Value::Object(item);
        match kind {
            "account" => {
                let account: Account =
                    serde_json::from_value(value).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                self.decide_account(tenant, account, now, report, outgoing)
                    .await
            }
            "attempt" => {
                let attempt: ContactAttempt =
                    serde_json::from_value(value).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                // Committed but not finished by a sender in time: enqueue it again. The
                // sender's claim keeps a double delivery from sending twice.
                if matches!(
                    attempt.status,
                    AttemptStatus::Queued | AttemptStatus::Sending
                ) {
                    outgoing.push(message_for(&attempt, outgoing.len()));
                    let retry = now.saturating_add(OUTBOX_RETRY).expect("in range");
                    self.store.retry_outbox_at(&attempt, retry).await?;
                    report.requeued += 1;
                }
                Ok(())
            }
            "announce" => {
                // Left by a tick whose publish failed after the change was made.
                let announce: Announcement =
                    serde_json::from_value(value).map_err(|e| RepoError::Corrupt(e.to_string()))?;
                self.announce(&announce).await?;
                report.announced += 1;
                Ok(())
            }
            other => {
                tracing::warn!(kind = other, "unexpected item on the due index");
                Ok(())
            }
        }
    }

    async fn decide_account(
        &self,
        tenant: &Tenant,
        account: Account,
        now: Timestamp,
        report: &mut TickReport,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<(), TickError> {
        let Some(debtor) = self.store.debtor(&tenant.id, &account.debtor).await? else {
            return self
                .stop(
                    &account,
                    now,
                    "the account's debtor is missing".into(),
                    report,
                )
                .await;
        };
        // A plan whose instalment is later than its grace days is broken: the
        // reminders go back to the whole debt.
        let account = self.break_late_plan(tenant, &debtor, account, now).await?;
        let account = self
            .break_late_promise(tenant, &debtor, account, now)
            .await?;
        // Every contact of this debtor on any account counts against the caps and gaps.
        let history = self
            .store
            .contact_history(&tenant.id, &debtor.id, None)
            .await?;
        let verdict = self
            .decider
            .decide(tenant, &account, &debtor, &history, now);
        match verdict {
            Verdict::Contact(c) => {
                let attempt = ContactAttempt {
                    tenant: tenant.id.clone(),
                    account: account.id.clone(),
                    debtor: debtor.id.clone(),
                    decision_id: c.decision_id.clone(),
                    channel: c.channel,
                    template: c.template.clone(),
                    status: AttemptStatus::Queued,
                    decided_at: now,
                    text: c.text.clone(),
                    to: debtor.phone.clone(),
                    language: debtor.language,
                    provider_message_id: None,
                    error: None,
                    claimed_at: None,
                    params: c.params.clone(),
                    tries: 0,
                    delivery: None,
                    error_code: None,
                    receipt: false,
                    opt_out_button: Some(c.opt_out_button),
                    states: Some(c.states),
                };
                let retry = now.saturating_add(OUTBOX_RETRY).expect("in range");
                // Recorded with the commit itself: a tick that fails after it cannot leave a
                // contact without its reason (a re-run finds the step decided, below).
                let decision = Decision {
                    at: now,
                    outcome: "contact".into(),
                    reason: c.reason.clone(),
                    decision_id: Some(c.decision_id.clone()),
                    next_action_at: c.next_action_at,
                };
                match self
                    .store
                    .commit_decided_contact(&account, &attempt, retry, &decision)
                    .await
                {
                    Ok(true) => {
                        note(&account, &decision);
                        self.log(tenant, &debtor, &account, &c, now).await?;
                        outgoing.push(message_for(&attempt, outgoing.len()));
                        report.contacted += 1;
                    }
                    Ok(false) => {
                        // Logged with the first commit, unless that tick failed in between.
                        self.log(tenant, &debtor, &account, &c, now).await?;
                        // This step went out before; only the schedule is left to move on.
                        self.reschedule(&account, c.next_action_at, report).await?;
                        report.already_decided += 1;
                    }
                    Err(RepoError::Conflict(_)) => report.conflicts += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            Verdict::Defer { until, reason } => {
                if self.reschedule(&account, Some(until), report).await? {
                    self.record(&account, now, "defer", reason, None, Some(until))
                        .await?;
                    report.deferred += 1;
                }
            }
            Verdict::Stop { reason } => self.stop(&account, now, reason, report).await?,
        }
        Ok(())
    }

    /// Publishes an event from the outbox, then takes it off (without a bus, only that).
    async fn announce(&self, a: &Announcement) -> Result<(), TickError> {
        if let Some(bus) = &self.bus {
            bus.publish(vec![a.event.clone()])
                .await
                .map_err(|e| TickError::Bus(e.to_string()))?;
        }
        Ok(self.store.announced(a).await?)
    }

    /// Announces a break (of a plan or a promise) just written, and gives the account as that
    /// write left it: the rest of the tick decides on it (the one read before, if it is gone).
    async fn announced_break(
        &self,
        announce: &Announcement,
        account: Account,
    ) -> Result<Account, TickError> {
        self.announce(announce).await?;
        Ok(self
            .store
            .account(&account.tenant, &account.id)
            .await?
            .unwrap_or(account))
    }

    async fn break_late_plan(
        &self,
        tenant: &Tenant,
        debtor: &cobro::domain::Debtor,
        account: Account,
        now: Timestamp,
    ) -> Result<Account, TickError> {
        let Some(r) = &account.plan else {
            return Ok(account);
        };
        let today = now.to_zoned(debtor.time_zone.tz()).date();
        // The plan's own grace days decide, the ones agreed with it: the tenant's rules may
        // have changed since. A reference that does not carry them (written before) reads the
        // plan as soon as an instalment is late at all.
        let grace = r.grace_days.map_or(0, |g| g as i32);
        if (today - r.next_due).get_days() <= grace {
            return Ok(account);
        }
        let Some(plan) = self.store.plan(&tenant.id, &account.id, &r.id).await? else {
            return Ok(account);
        };
        if !plan.is_broken_on(today) {
            return Ok(account);
        }
        let event = PlanBroken {
            tenant: tenant.id.clone(),
            account: account.id.clone(),
            debtor: account.debtor.clone(),
            plan: plan.id.clone(),
            late_instalment_due: plan.next_open().map_or(r.next_due, |(due, _)| due),
            grace_days: plan.grace_days,
            at: now,
        };
        let announce = Announcement::of(&account, event.event());
        self.store
            .break_plan(&account, &plan, &announce, now)
            .await?;
        tracing::info!(account = %account.id, plan = %plan.id, "plan broken: an instalment is past the grace days");
        self.announced_break(&announce, account).await
    }

    /// A promise whose day has passed short of the amount is broken; the reminders go back to
    /// the plan or the debt.
    async fn break_late_promise(
        &self,
        tenant: &Tenant,
        debtor: &cobro::domain::Debtor,
        account: Account,
        now: Timestamp,
    ) -> Result<Account, TickError> {
        let Some(promise) = &account.promise else {
            return Ok(account);
        };
        let today = now.to_zoned(debtor.time_zone.tz()).date();
        if today <= promise.by {
            return Ok(account);
        }
        let event = PromiseBroken {
            tenant: tenant.id.clone(),
            account: account.id.clone(),
            debtor: account.debtor.clone(),
            promised_minor: promise.amount_minor,
            paid_minor: promise.paid_minor,
            by: promise.by,
            at: now,
        };
        let announce = Announcement::of(&account, event.event());
        if !self.store.end_promise(&account, &announce, now).await? {
            return Ok(account);
        }
        tracing::info!(account = %account.id, by = %promise.by, "promise to pay broken");
        self.announced_break(&announce, account).await
    }

    /// The contact goes into the debtor's log, which the caps and gaps count (once per
    /// decision, however often this runs).
    async fn log(
        &self,
        tenant: &Tenant,
        debtor: &cobro::domain::Debtor,
        account: &Account,
        c: &cobro::collect::Contact,
        now: Timestamp,
    ) -> Result<(), TickError> {
        let entry = LoggedContact {
            at: now,
            channel: c.channel,
            account: account.id.clone(),
            decision_id: c.decision_id.clone(),
        };
        Ok(self
            .store
            .log_contact(&tenant.id, &debtor.id, entry)
            .await?)
    }

    async fn stop(
        &self,
        account: &Account,
        now: Timestamp,
        reason: String,
        report: &mut TickReport,
    ) -> Result<(), TickError> {
        if self.reschedule(account, None, report).await? {
            self.record(account, now, "stop", reason, None, None)
                .await?;
            report.stopped += 1;
        }
        Ok(())
    }

    /// Moves the account on the due index; false when it changed meanwhile (decided next tick).
    async fn reschedule(
        &self,
        account: &Account,
        at: Option<Timestamp>,
        report: &mut TickReport,
    ) -> Result<bool, TickError> {
        match self.store.reschedule_account(account, at).await {
            Ok(()) => Ok(true),
            Err(RepoError::Conflict(_)) => {
                report.conflicts += 1;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record(
        &self,
        account: &Account,
        now: Timestamp,
        outcome: &str,
        reason: String,
        decision_id: Option<String>,
        next_action_at: Option<Timestamp>,
    ) -> Result<(), TickError> {
        let d = Decision {
            at: now,
            outcome: outcome.into(),
            reason,
            decision_id,
            next_action_at,
        };
        note(account, &d);
        Ok(self
            .store
            .record_decision(&account.tenant, &account.id, &d)
            .await?)
    }
}

/// A decision made: logged and counted.
fn note(account: &Account, d: &Decision) {
    tracing::info!(account = %account.id, outcome = %d.outcome, reason = %d.reason, "decision");
    cobro::metrics::count_by(
        cobro::metrics::DECISIONS,
        "Rule",
        cobro::metrics::decision_rule(&d.outcome, &d.reason),
        1,
    );
}

/// How long an item that failed `failures` times in a row before waits: doubling, bounded.
fn retry_after(failures: u32) -> SignedDuration {
    let factor = 1i32 << failures.min(16);
    RETRY_FIRST
        .checked_mul(factor)
        .unwrap_or(RETRY_MAX)
        .min(RETRY_MAX)
}

fn message_for(attempt: &ContactAttempt, index: usize) -> Outgoing {
    let m = OutboundMessage {
        tenant: attempt.tenant.clone(),
        account: attempt.account.clone(),
        decision_id: attempt.decision_id.clone(),
    };
    Outgoing::new(
        index.to_string(),
        serde_json::to_string(&m).expect("serializes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_item_waits_twice_as_long_each_time_up_to_an_hour() {
        let mins = |f| retry_after(f).as_mins();
        assert_eq!([0, 1, 2, 3, 4, 40].map(mins), [5, 10, 20, 40, 60, 60]);
    }
}
