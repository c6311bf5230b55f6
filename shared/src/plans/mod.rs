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
    /// An instalment was later than the tenant's grace days.
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
}

/// What the account carries of its plan: enough for the reminders to write about the next
/// instalment instead of the whole debt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    pub id: String,
    pub next_due: Date,
    pub next_amount_minor: i64,
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
        })
    }

    /// Broken when an instalment is more than the grace days late on `today`.
    pub fn is_broken_on(&self, today: Date) -> bool {
        self.next_open()
            .is_some_and(|(due, _)| (today - due).get_days() > self.grace_days as i32)
    }
}

#[cfg(test)]
mod tests;
