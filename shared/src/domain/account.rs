//! Accounts (a debt owed to a tenant), their instalments and the payments against them.

use jiff::{civil::Date, Timestamp};
use serde::{Deserialize, Serialize};

use super::{AccountId, Currency, DebtorId, DomainError, Money, PaymentId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Owed and collectable.
    Open,
    /// Collection paused (breathing space, dispute, by the CRM).
    Paused,
    /// Paid in full.
    Settled,
    /// Closed by the creditor (written off, sold, legal).
    Closed,
}

impl AccountStatus {
    pub fn is_collectable(self) -> bool {
        matches!(self, AccountStatus::Open)
    }
}

/// "I will pay X by D": made in the chat or by the CRM; kept by payments reaching X by D,
/// broken when D passes short of it. While it stands the reminders wait (one the day before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    pub amount_minor: i64,
    pub by: Date,
    /// Paid since the promise was made.
    #[serde(default)]
    pub paid_minor: i64,
    pub made_at: Timestamp,
    /// `crm` or `debtor`.
    pub made_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instalment {
    pub number: u32,
    pub due: Date,
    pub amount_minor: i64,
    pub paid_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub tenant: TenantId,
    pub id: AccountId,
    pub debtor: DebtorId,
    pub currency: Currency,
    /// What was owed originally, in minor units.
    pub principal_minor: i64,
    /// What is owed now, in minor units; never negative.
    pub balance_minor: i64,
    pub due_date: Date,
    pub status: AccountStatus,
    #[serde(default)]
    pub product: Option<String>,
    /// Who is owed, when it is not the tenant: the lender an agency collects for. Messages
    /// name it as the creditor (the law of CL, MX and ES requires the creditor's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor: Option<String>,
    /// What stops or pauses collection whatever the schedule says: a lawsuit served, an
    /// insolvency, an open dispute, a pause (breathing space, vulnerability).
    #[serde(default)]
    pub holds: crate::compliance::Holds,
    /// The CRM's labels; strategy segments can match on them.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The plan the debtor accepted, while it runs: reminders follow its next instalment.
    /// cobro's own: a CRM update keeps it.
    #[serde(default)]
    pub plan: Option<crate::plans::PlanRef>,
    /// Paid beyond the balance: kept as a credit, never lost. cobro's own.
    #[serde(default)]
    pub credit_minor: i64,
    /// Of what the CRM states is owed, the part the credit paid (`domain::credit`): the balance
    /// is the CRM's statement less it. cobro's own.
    #[serde(default)]
    pub credit_netted_minor: i64,
    /// A promise to pay, while it stands. cobro's own.
    #[serde(default)]
    pub promise: Option<Promise>,
    /// Bumped on every write; conditional writes use it to detect lost updates.
    #[serde(default)]
    pub version: u64,
}

impl Account {
    /// A new account as a CRM first states it: settled when nothing is owed, else open; no
    /// holds, tags or product, and none of cobro's own state yet (plan, credit, promise);
    /// version 0. The CRM's other fields are set over it with struct update syntax.
    pub fn new(
        tenant: TenantId,
        id: AccountId,
        debtor: DebtorId,
        currency: Currency,
        principal_minor: i64,
        balance_minor: i64,
        due_date: Date,
    ) -> Account {
        Account {
            tenant,
            id,
            debtor,
            currency,
            principal_minor,
            balance_minor,
            due_date,
            status: if balance_minor == 0 {
                AccountStatus::Settled
            } else {
                AccountStatus::Open
            },
            creditor: None,
            product: None,
            holds: Default::default(),
            tags: vec![],
            plan: None,
            credit_minor: 0,
            credit_netted_minor: 0,
            promise: None,
            version: 0,
        }
    }

    pub fn balance(&self) -> Money {
        Money::new(self.balance_minor, self.currency)
    }

    /// What a new plan is built on: the balance less the interest of the running plan's
    /// unpaid instalments, which comes off when the new plan replaces it. So a plan never
    /// charges interest on another plan's interest.
    pub fn plan_basis(&self) -> Money {
        let unearned = self.plan.as_ref().map_or(0, |p| p.unearned_interest_minor);
        Money::new(self.balance_minor - unearned.max(0), self.currency)
    }

    /// What the reminders are about on `today`, as (due day, amount): a standing promise's day
    /// and what is left of it; while a plan runs, its earliest unpaid instalment's day and the
    /// sum of those due by `today` (the next one alone before it is due); else the account's
    /// due date and whole balance. Never more than the balance: a promise or an instalment
    /// made when the balance carried a plan's interest, since reversed, asks no more than is
    /// owed.
    pub fn reminder_target(&self, today: Date) -> (Date, i64) {
        let (due, amount) = if let Some(p) = &self.promise {
            (p.by, (p.amount_minor - p.paid_minor).max(0))
        } else {
            match self.plan_due(today) {
                Some(d) => (d.from, d.amount_minor),
                None => (self.due_date, self.balance_minor),
            }
        };
        (due, amount.min(self.balance_minor.max(0)))
    }

    /// While a plan runs, the instalments its reminders ask for on `today` (every one due by
    /// then, or the next one before any is), never more than the balance.
    pub fn plan_due(&self, today: Date) -> Option<crate::plans::PlanDue> {
        self.plan.as_ref().map(|p| {
            let mut due = p.due(today);
            due.amount_minor = due.amount_minor.min(self.balance_minor.max(0));
            due
        })
    }

    /// Days past due on `today` (0 while not yet due).
    pub fn days_past_due(&self, today: Date) -> i64 {
        let days = (today - self.due_date).get_days();
        i64::from(days.max(0))
    }

    /// Days relative to the due date: negative before it. Strategies key their steps on this.
    pub fn days_from_due(&self, today: Date) -> i32 {
        (today - self.due_date).get_days()
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if self.principal_minor < 0 || self.balance_minor < 0 {
            return Err(DomainError::new("amounts cannot be negative"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub tenant: TenantId,
    pub account: AccountId,
    pub id: PaymentId,
    pub amount: Money,
    pub paid_at: Timestamp,
    pub method: String,
    pub source: String,
    /// The part of the amount that reduced the balance (an overpayment is recorded, not lost).
    pub applied_minor: i64,
    /// What the settlement this payment completed forgave: the rest of the balance, cleared
    /// with it (an aging report of an earlier day puts it back, as it does `applied_minor`).
    #[serde(default)]
    pub forgiven_minor: i64,
}

impl Account {
    /// The name messages give the creditor: the account's own, else the tenant's.
    pub fn creditor_name<'a>(&'a self, tenant: &'a super::Tenant) -> &'a str {
        self.creditor.as_deref().unwrap_or(&tenant.name)
    }
}

/// The longest creditor name an account may carry.
pub const MAX_CREDITOR_CHARS: usize = 200;

/// The creditor an account names, as the CRM sent it: trimmed, at most
/// `MAX_CREDITOR_CHARS`; required of an agency, which collects for someone else and must say
/// whom. `Err` says why (the field is `creditor`).
pub fn check_creditor(
    kind: super::TenantKind,
    creditor: Option<&str>,
) -> Result<Option<String>, String> {
    let creditor = creditor.map(str::trim).filter(|c| !c.is_empty());
    match creditor {
        Some(c) if c.chars().count() > MAX_CREDITOR_CHARS => {
            Err(format!("is at most {MAX_CREDITOR_CHARS} characters"))
        }
        Some(c) => Ok(Some(c.to_string())),
        None if kind == super::TenantKind::Agency => {
            Err("is required of an agency: messages must name the creditor it collects for".into())
        }
        None => Ok(None),
    }
}

#[cfg(test)]
impl Account {
    /// An open CLP account of 100 owed, due `due`: for unit tests.
    pub(crate) fn sample(due: Date) -> Account {
        Account::new(
            TenantId::parse("t").unwrap(),
            AccountId::parse("a").unwrap(),
            DebtorId::parse("d").unwrap(),
            Currency::parse("CLP").unwrap(),
            100,
            100,
            due,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn account(due: Date) -> Account {
        Account::sample(due)
    }

    #[test]
    fn a_new_account_is_open_while_something_is_owed_and_starts_with_none_of_cobros_state() {
        let owing = Account::sample(date(2026, 3, 1));
        assert_eq!(owing.status, AccountStatus::Open);
        assert_eq!((owing.credit_minor, owing.credit_netted_minor), (0, 0));
        assert!(owing.plan.is_none() && owing.promise.is_none() && owing.tags.is_empty());
        assert_eq!(owing.version, 0);
        let nothing_owed = Account::new(
            owing.tenant.clone(),
            owing.id.clone(),
            owing.debtor.clone(),
            owing.currency,
            100,
            0,
            owing.due_date,
        );
        assert_eq!(nothing_owed.status, AccountStatus::Settled);
    }

    #[test]
    fn days_past_due_counts_calendar_days() {
        let a = account(date(2026, 3, 1));
        assert_eq!(a.days_past_due(date(2026, 2, 26)), 0);
        assert_eq!(a.days_from_due(date(2026, 2, 26)), -3);
        assert_eq!(a.days_past_due(date(2026, 3, 31)), 30);
    }

    fn plan_ref(unpaid: &[(Date, i64)]) -> crate::plans::PlanRef {
        crate::plans::PlanRef::owing("p", 5, unpaid)
    }

    /// A plan's reminder asks for every instalment due, from the earliest unpaid one's day;
    /// before the first is due, for that one alone.
    #[test]
    fn a_plans_reminder_asks_for_every_instalment_due() {
        let mut a = account(date(2026, 1, 1));
        a.balance_minor = 90_000;
        a.plan = Some(plan_ref(&[
            (date(2026, 3, 2), 20_000), // 10,000 of 30,000 paid
            (date(2026, 4, 2), 30_000),
            (date(2026, 5, 4), 30_000),
        ]));
        let before = (date(2026, 3, 2), 20_000);
        assert_eq!(a.reminder_target(date(2026, 2, 27)), before);
        assert_eq!(a.reminder_target(date(2026, 3, 2)), before);
        assert_eq!(a.reminder_target(date(2026, 4, 1)), before);
        let two = (date(2026, 3, 2), 50_000);
        assert_eq!(a.reminder_target(date(2026, 4, 2)), two);
        assert_eq!(a.reminder_target(date(2026, 4, 20)), two);
        assert_eq!(
            a.reminder_target(date(2026, 6, 1)),
            (date(2026, 3, 2), 80_000)
        );
        // Never more than the balance (a CRM lowered it).
        a.balance_minor = 45_000;
        assert_eq!(
            a.reminder_target(date(2026, 4, 20)),
            (date(2026, 3, 2), 45_000)
        );
        // A reference written before the unpaid instalments were carried: its next one.
        a.balance_minor = 90_000;
        a.plan.as_mut().unwrap().unpaid.clear();
        assert_eq!(a.reminder_target(date(2026, 4, 20)), before);
    }

    /// A promise made when the balance carried a plan's interest asks no more than the balance
    /// once that interest came off (the plan broke): no overpayment is asked for.
    #[test]
    fn a_promise_asks_no_more_than_the_balance() {
        let mut a = account(date(2026, 1, 1));
        a.balance_minor = 106_000;
        a.promise = Some(Promise {
            amount_minor: 106_000,
            by: date(2026, 3, 20),
            paid_minor: 0,
            made_at: "2026-03-10T12:00:00Z".parse().unwrap(),
            made_by: "debtor".into(),
        });
        let today = date(2026, 3, 16);
        assert_eq!(a.reminder_target(today), (date(2026, 3, 20), 106_000));
        a.balance_minor = 100_000;
        assert_eq!(a.reminder_target(today), (date(2026, 3, 20), 100_000));
        a.promise.as_mut().unwrap().paid_minor = 30_000;
        a.balance_minor = 70_000;
        assert_eq!(a.reminder_target(today), (date(2026, 3, 20), 70_000));
        a.promise = None;
        assert_eq!(a.reminder_target(today), (date(2026, 1, 1), 70_000));
    }
}
