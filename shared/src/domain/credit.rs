//! A debtor's credit (paid beyond the balance) against what the CRM later says is owed.
//!
//! The CRM states what is owed before cobro's credit: its fees, instalments and larger amounts
//! raise that statement. cobro keeps `credit_netted_minor`, the part of the statement the
//! credit covers, so the balance owed is the statement less it. A statement above the last one
//! (the balance plus what the credit covers) takes the rise from the credit, up to the credit;
//! a statement below what the credit covers gives the difference back to the credit (the
//! charge it paid was taken back), so no credit is lost. The same statement twice moves
//! nothing.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Account, AccountId, AccountStatus, Money, TenantId};

/// One move of credit by a CRM statement, kept in the account's history and in the payments
/// ledger beside the payments: no money came in, `amount` of the credit went to the balance
/// (negative: came back to the credit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditNetted {
    pub tenant: TenantId,
    pub account: AccountId,
    /// `credit~<version>`: the account's version the statement wrote, so one per write. `~`
    /// is not allowed in a payment id, so it never names a payment.
    pub id: String,
    /// Moved from the credit to the balance; negative: given back to the credit.
    pub amount: Money,
    pub at: Timestamp,
    /// What the CRM stated is owed.
    pub stated_minor: i64,
    /// What is owed after the credit.
    pub balance_minor: i64,
    /// The credit left.
    pub credit_minor: i64,
}

impl CreditNetted {
    /// The entry's id for the account version that wrote it.
    pub fn id_for(version: u64) -> String {
        format!("credit~{version}")
    }
}

impl Account {
    /// Takes `self`, the account as the CRM states it (its `balance_minor` the statement, its
    /// cobro fields those of `current`), to what is owed after `current`'s credit. Returns what
    /// moved from the credit to the balance (negative: back to the credit). A balance the
    /// credit brings to zero is settled, as a zero from the CRM is.
    pub fn net_credit(&mut self, current: &Account) -> i64 {
        let stated = self.balance_minor;
        let netted = current.credit_netted_minor.max(0);
        let credit = current.credit_minor.max(0);
        // What the CRM was last taken to state: the balance (after payments since) and what the
        // credit covers of it.
        let before = current.balance_minor.saturating_add(netted);
        let moved = if stated > before {
            (stated - before).min(credit)
        } else {
            // Never more covered than is stated.
            -(netted - netted.min(stated))
        };
        self.credit_netted_minor = netted + moved;
        self.credit_minor = credit - moved;
        self.balance_minor = stated - self.credit_netted_minor;
        if self.balance_minor == 0 && stated > 0 {
            self.status = AccountStatus::Settled;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn account(balance: i64, credit: i64, netted: i64) -> Account {
        Account {
            principal_minor: 100_000,
            balance_minor: balance,
            credit_minor: credit,
            credit_netted_minor: netted,
            version: 3,
            ..Account::sample(jiff::civil::date(2026, 3, 1))
        }
    }

    /// The CRM's statement `stated` over `current`: (balance, credit, netted, moved).
    fn state(current: &Account, stated: i64) -> (i64, i64, i64, i64) {
        let mut next = current.clone();
        next.balance_minor = stated;
        let moved = next.net_credit(current);
        (
            next.balance_minor,
            next.credit_minor,
            next.credit_netted_minor,
            moved,
        )
    }

    #[test]
    fn statements_take_their_rise_from_the_credit_and_give_back_what_they_drop() {
        // (balance, credit, netted) now, the statement, then (balance, credit, netted, moved).
        let table = [
            // Paid 130,000 on 100,000: a fee of 20,000 is paid from the credit.
            ((0, 30_000, 0), 20_000, (0, 10_000, 20_000, 20_000)),
            // The same statement again moves nothing.
            ((0, 10_000, 20_000), 20_000, (0, 10_000, 20_000, 0)),
            // A new instalment of 15,000: 10,000 from the credit, 5,000 owed.
            ((0, 10_000, 20_000), 35_000, (5_000, 0, 30_000, 10_000)),
            // A rise with no credit is owed whole.
            ((5_000, 0, 30_000), 45_000, (15_000, 0, 30_000, 0)),
            // The CRM lowers by what was owed: nothing comes back.
            ((5_000, 0, 30_000), 30_000, (0, 0, 30_000, 0)),
            // It waives 15,000: 5,000 owed, 10,000 the credit had paid come back.
            ((5_000, 0, 30_000), 20_000, (0, 10_000, 20_000, -10_000)),
            // Nothing owed at all: the whole credit is back.
            ((0, 10_000, 20_000), 0, (0, 30_000, 0, -20_000)),
            // A statement that caught up with a payment (130,000 on 100,000) moves nothing.
            ((70_000, 0, 0), 70_000, (70_000, 0, 0, 0)),
            // One that has not caught up yet: the credit pays the rise ...
            ((0, 30_000, 0), 100_000, (70_000, 0, 30_000, 30_000)),
            // ... and comes back when it does.
            ((70_000, 0, 30_000), 0, (0, 30_000, 0, -30_000)),
        ];
        for ((balance, credit, netted), stated, expected) in table {
            let current = account(balance, credit, netted);
            assert_eq!(
                state(&current, stated),
                expected,
                "{balance}/{credit}/{netted} stated {stated}"
            );
        }
    }

    #[test]
    fn a_balance_the_credit_clears_is_settled() {
        let current = account(0, 30_000, 0);
        let mut next = current.clone();
        next.balance_minor = 20_000;
        next.net_credit(&current);
        assert_eq!(next.status, AccountStatus::Settled);
        let mut next = current.clone();
        next.balance_minor = 40_000;
        next.net_credit(&current);
        assert_eq!(next.status, AccountStatus::Open);
    }

    proptest! {
        /// Whatever the account and the statement: every minor unit is accounted for (what the
        /// credit and the statement's cover hold together does not change), nothing goes
        /// negative, the balance is the statement less its cover, the cover never exceeds the
        /// statement, the rise is met up to the credit, and stating the same again moves
        /// nothing.
        #[test]
        fn balance_and_credit_add_up_exactly(
            balance in 0i64..1_000_000,
            credit in 0i64..1_000_000,
            netted in 0i64..1_000_000,
            stated in 0i64..3_000_000,
        ) {
            let current = account(balance, credit, netted);
            let (b, c, n, moved) = state(&current, stated);
            prop_assert_eq!(c + n, credit + netted);
            prop_assert_eq!(n - netted, moved);
            prop_assert!(b >= 0 && c >= 0 && n >= 0);
            prop_assert_eq!(b + n, stated);
            prop_assert!(n <= stated);
            let rise = stated - (balance + netted);
            if rise > 0 {
                prop_assert_eq!(moved, rise.min(credit));
            } else {
                prop_assert!(moved <= 0);
            }
            let mut after = current.clone();
            (after.balance_minor, after.credit_minor, after.credit_netted_minor) = (b, c, n);
            prop_assert_eq!(state(&after, stated), (b, c, n, 0));
        }
    }
}
