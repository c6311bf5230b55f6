//! Payment plans: built from the account and the tenant's rules (`builder`), then proposed,
//! accepted, active, completed or broken (`Plan`).

pub mod builder;

use jiff::{civil::Date, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, TenantId};
pub use builder::{
    affordable, build, Frequency, PlanRequest, PlanRules, PlanTerms, PlannedInstalment,
    SettlementRules,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Agreed (by the debtor in the chat, or by the CRM); nothing paid yet.
    Accepted,
    /// At least one payment made.
    Active,
    Completed,
    /// An instalment was later than the plan's grace days (the tenant's when it was agreed).
    Broken,
    /// Replaced by another plan before it ended.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub tenant: TenantId,
    pub account: AccountId,
    pub id: String,
    pub status: PlanStatus,
    pub terms: PlanTerms,
    /// Paid so far against each instalment, in the order of `terms.instalments`.
    pub paid_minor: Vec<i64>,
    pub accepted_at: Timestamp,
    /// `crm` or `debtor`.
    pub accepted_by: String,
    #[serde(default)]
    pub grace_days: u32,
    /// When the plan stopped running unpaid (replaced or broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The interest its unpaid instalments carried, taken off the balance when it ended.
    #[serde(default)]
    pub interest_reversed_minor: i64,
}

/// What the account carries of its plan: enough for the reminders to write about the
/// instalments due instead of the whole debt, and to know when the plan breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    pub id: String,
    pub next_due: Date,
    pub next_amount_minor: i64,
    /// The plan's interest not yet paid: what comes off the balance if the plan is replaced
    /// or broken, and what a new plan is not built on (`Account::plan_basis`).
    #[serde(default)]
    pub unearned_interest_minor: i64,
    /// The plan's own grace days, agreed with it: what breaks it, whatever the tenant's rules
    /// say later. `None` on references written before it was carried: the plan decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<u32>,
    /// Every instalment not fully paid, oldest first, with what is left of it: a reminder asks
    /// for all of those already due, not the first only. Empty on references written before it
    /// was carried (the next instalment stands for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpaid: Vec<Unpaid>,
}

#[cfg(test)]
impl PlanRef {
    /// A running plan with these instalments left (due day, what is left of it), oldest first:
    /// for unit tests.
    pub(crate) fn owing(id: &str, grace_days: u32, unpaid: &[(Date, i64)]) -> PlanRef {
        PlanRef {
            id: id.into(),
            next_due: unpaid[0].0,
            next_amount_minor: unpaid[0].1,
            unearned_interest_minor: 0,
            grace_days: Some(grace_days),
            unpaid: unpaid
                .iter()
                .map(|(due, amount_minor)| Unpaid {
                    due: *due,
                    amount_minor: *amount_minor,
                })
                .collect(),
        }
    }
}

/// An instalment not fully paid: its due day and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpaid {
    pub due: Date,
    pub amount_minor: i64,
}

/// What is owed under a plan on a day (`PlanRef::due`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanDue {
    /// The earliest unpaid instalment's day: after the day when none is due yet.
    pub from: Date,
    /// What is left of those instalments.
    pub amount_minor: i64,
    /// How many instalments that is.
    pub instalments: usize,
}

impl PlanRef {
    /// What is owed under the plan on `today`: every unpaid instalment due by then (today's
    /// and the overdue ones), or the next one when none is due yet.
    pub fn due(&self, today: Date) -> PlanDue {
        if self.unpaid.is_empty() {
            return PlanDue {
                from: self.next_due,
                amount_minor: self.next_amount_minor,
                instalments: 1,
            };
        }
        let until = today.max(self.next_due);
        let due = self.unpaid.iter().filter(|u| u.due <= until);
        PlanDue {
            from: self.next_due,
            amount_minor: due
                .clone()
                .map(|u| u.amount_minor.max(0))
                .fold(0i64, i64::saturating_add),
            instalments: due.count(),
        }
    }

    /// `due` as (the earliest due day, the sum left of them).
    pub fn due_on(&self, today: Date) -> (Date, i64) {
        let due = self.due(today);
        (due.from, due.amount_minor)
    }
}

impl Plan {
    /// A plan the debtor (in the chat) or the CRM accepted. Its id comes from the account and
    /// the request, so accepting the same terms twice is the same plan.
    pub fn accepted(
        account: &crate::domain::Account,
        terms: PlanTerms,
        request: &PlanRequest,
        rules: &PlanRules,
        now: Timestamp,
        by: &str,
    ) -> Plan {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(
            format!(
                "{}|{}|{}|{}",
                account.id,
                account.principal_minor,
                account.due_date,
                serde_json::to_string(request).expect("serializes")
            )
            .as_bytes(),
        );
        Plan {
            tenant: account.tenant.clone(),
            account: account.id.clone(),
            id: hex::encode(&digest[..8]),
            status: PlanStatus::Accepted,
            paid_minor: vec![0; terms.instalments.len()],
            terms,
            accepted_at: now,
            accepted_by: by.to_string(),
            grace_days: rules.grace_days,
            ended_at: None,
            interest_reversed_minor: 0,
        }
    }

    /// Allocates a payment to the instalments, oldest unpaid first; returns what it did not
    /// need (an overpayment of the plan).
    pub fn allocate(&mut self, amount_minor: i64) -> i64 {
        let mut left = amount_minor;
        for (i, inst) in self.terms.instalments.iter().enumerate() {
            if left == 0 {
                break;
            }
            let open = inst.amount_minor - self.paid_minor[i];
            let take = open.min(left).max(0);
            self.paid_minor[i] += take;
            left -= take;
        }
        if self.is_paid() {
            self.status = PlanStatus::Completed;
        } else if self.paid_minor.iter().any(|p| *p > 0) {
            self.status = PlanStatus::Active;
        }
        left
    }

    pub fn is_paid(&self) -> bool {
        self.terms
            .instalments
            .iter()
            .zip(&self.paid_minor)
            .all(|(i, p)| *p >= i.amount_minor)
    }

    /// The first instalment not fully paid, with what is left of it.
    pub fn next_open(&self) -> Option<(Date, i64)> {
        self.terms
            .instalments
            .iter()
            .zip(&self.paid_minor)
            .find(|(i, p)| **p < i.amount_minor)
            .map(|(i, p)| (i.due, i.amount_minor - p))
    }

    /// What the account carries while the plan runs.
    pub fn reference(&self) -> Option<PlanRef> {
        let (next_due, next_amount_minor) = self.next_open()?;
        Some(PlanRef {
            id: self.id.clone(),
            next_due,
            next_amount_minor,
            unearned_interest_minor: self.unearned_interest(),
            grace_days: Some(self.grace_days),
            unpaid: self
                .terms
                .instalments
                .iter()
                .zip(&self.paid_minor)
                .filter(|(i, p)| **p < i.amount_minor)
                .map(|(i, p)| Unpaid {
                    due: i.due,
                    amount_minor: i.amount_minor - p,
                })
                .collect(),
        })
    }

    /// The interest that the instalments not yet paid carry. Interest is spread evenly over
    /// the regular instalments (the down payment carries none), so each amount paid on them
    /// earns its share; the share is rounded down, so a rounding minor unit stays with the
    /// debtor. Zero once the plan stops running.
    pub fn unearned_interest(&self) -> i64 {
        let interest = self.terms.interest_minor;
        if interest <= 0 || !self.is_running() {
            return 0;
        }
        let (mut total, mut paid) = (0i128, 0i128);
        for (i, p) in self.terms.instalments.iter().zip(&self.paid_minor) {
            if i.number > 0 {
                total += i128::from(i.amount_minor);
                paid += i128::from((*p).min(i.amount_minor));
            }
        }
        if total == 0 {
            return 0;
        }
        let earned = i128::from(interest) * paid / total;
        interest - earned as i64
    }

    /// Stops a running plan unpaid (replaced by another, or broken): its unearned interest is
    /// no longer owed. Returns that interest, to take off the balance.
    pub fn end_unpaid(&mut self, status: PlanStatus, at: Timestamp) -> i64 {
        let reversed = self.unearned_interest();
        self.status = status;
        self.ended_at = Some(at);
        self.interest_reversed_minor = reversed;
        reversed
    }

    /// When the plan last changed the account's balance by interest: accepted (interest
    /// added), then ended unpaid (the unearned part taken off). The plan index orders by it.
    pub fn balance_changed_at(&self) -> Timestamp {
        self.ended_at.unwrap_or(self.accepted_at)
    }

    /// What undoing the plan's interest changes made after `since` does to a balance: the
    /// interest added by an acceptance after it comes off, what an end after it took off goes
    /// back on. The aging export uses it to see a balance as it stood before `since`.
    pub fn interest_added_since(&self, since: Timestamp) -> i64 {
        let mut added = 0;
        if self.accepted_at >= since {
            added += self.terms.interest_minor;
        }
        if self.ended_at.is_some_and(|at| at >= since) {
            added -= self.interest_reversed_minor;
        }
        added
    }

    /// Broken when an instalment is more than the grace days late on `today`.
    pub fn is_broken_on(&self, today: Date) -> bool {
        self.next_open()
            .is_some_and(|(due, _)| (today - due).get_days() > self.grace_days as i32)
    }
}

#[cfg(test)]
mod tests;
