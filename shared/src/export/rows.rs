//! The columns of each kind and the rows that fill them. Every kind's columns are documented
//! in docs/exports.md; keep the two in step.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::collections::BTreeMap;

use super::decimal::decimal;
use super::job::Kind;
use crate::domain::{Account, AccountStatus, ContactAttempt, CreditNetted, Currency, Payment};
use crate::plans::{Plan, PlanStatus};
use crate::repo::Decision;

/// One value of a row. Amounts keep their minor units and currency until an encoder writes
/// them, so totals add integers, never decimal strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Amount { minor: i64, currency: Currency },
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    fn opt(s: Option<impl Into<String>>) -> Cell {
        s.map_or(Cell::Empty, Cell::text)
    }

    /// The value as text: amounts as decimal strings in the currency's units.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Amount { minor, currency } => decimal(*minor, *currency),
            Cell::Empty => String::new(),
        }
    }
}

pub fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Payments => &[
            "paid_at_utc",
            "paid_at_local",
            "payment_id",
            "account_id",
            "currency",
            "amount",
            "applied",
            "credit",
            "method",
            "source",
            "recorded_at_utc",
        ],
        Kind::Accounts => &[
            "account_id",
            "debtor_id",
            "product",
            "currency",
            "principal",
            "balance",
            "credit",
            "status",
            "due_date",
            "days_past_due",
            "aging_bucket",
            "plan_id",
            "promise_amount",
            "promise_by",
            "tags",
        ],
        Kind::Aging => &["as_of", "currency", "bucket", "accounts", "balance"],
        Kind::Plans => &[
            "plan_id",
            "account_id",
            "status",
            "accepted_at_utc",
            "accepted_at_local",
            "accepted_by",
            "currency",
            "balance",
            "discount",
            "interest",
            "total",
            "paid",
            "remaining",
            "instalments",
            "instalments_paid",
            "first_due",
            "last_due",
            "grace_days",
        ],
        Kind::Contacts => &[
            "at_utc",
            "at_local",
            "record",
            "account_id",
            "debtor_id",
            "decision_id",
            "outcome",
            "reason",
            "channel",
            "template",
            "delivery",
            "provider_message_id",
            "error_code",
        ],
    }
}

pub fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn amount(minor: i64, currency: Currency) -> Cell {
    Cell::Amount { minor, currency }
}

/// `recorded_at`: when cobro recorded it (empty for payments from before it kept the time).
pub fn payment_row(p: &Payment, recorded_at: Option<Timestamp>, tz: &TimeZone) -> Vec<Cell> {
    let c = p.amount.currency;
    vec![
        Cell::text(utc(p.paid_at)),
        Cell::text(local(p.paid_at, tz)),
        Cell::text(p.id.as_str()),
        Cell::text(p.account.as_str()),
        Cell::text(c.code()),
        amount(p.amount.minor, c),
        amount(p.applied_minor, c),
        amount(p.amount.minor - p.applied_minor, c),
        Cell::text(&p.method),
        Cell::text(&p.source),
        Cell::opt(recorded_at.map(utc)),
    ]
}

/// Credit a CRM statement moved, as a row of the payments ledger: no money came in (`amount`
/// 0), `applied` is what the credit paid of the balance and `credit` the credit it took
/// (negative; both the other way round when it was given back), so `credit` stays
/// `amount − applied` and the file's `credit` total is the change in what the debtors hold.
/// Its time is when it happened, in both time columns.
pub fn credit_row(c: &CreditNetted, tz: &TimeZone) -> Vec<Cell> {
    let cur = c.amount.currency;
    vec![
        Cell::text(utc(c.at)),
        Cell::text(local(c.at, tz)),
        Cell::text(&c.id),
        Cell::text(c.account.as_str()),
        Cell::text(cur.code()),
        amount(0, cur),
        amount(c.amount.minor, cur),
        amount(-c.amount.minor, cur),
        Cell::text("credit"),
        Cell::text("cobro"),
        Cell::text(utc(c.at)),
    ]
}

/// Days-past-due buckets, as finance reports them. Only open and paused accounts that owe
/// something are aged.
pub const BUCKETS: [&str; 6] = ["current", "1-30", "31-60", "61-90", "91-120", "121+"];

pub fn bucket(days_past_due: i64) -> usize {
    match days_past_due {
        i64::MIN..=0 => 0,
        1..=30 => 1,
        31..=60 => 2,
        61..=90 => 3,
        91..=120 => 4,
        _ => 5,
    }
}

fn is_aged(a: &Account) -> bool {
    a.balance_minor > 0 && matches!(a.status, AccountStatus::Open | AccountStatus::Paused)
}

fn status(a: AccountStatus) -> &'static str {
    match a {
        AccountStatus::Open => "open",
        AccountStatus::Paused => "paused",
        AccountStatus::Settled => "settled",
        AccountStatus::Closed => "closed",
    }
}

pub fn account_row(a: &Account, as_of: Date) -> Vec<Cell> {
    let c = a.currency;
    let dpd = a.days_past_due(as_of);
    vec![
        Cell::text(a.id.as_str()),
        Cell::text(a.debtor.as_str()),
        Cell::opt(a.product.clone()),
        Cell::text(c.code()),
        amount(a.principal_minor, c),
        amount(a.balance_minor, c),
        amount(a.credit_minor, c),
        Cell::text(status(a.status)),
        Cell::text(a.due_date.to_string()),
        Cell::Int(dpd),
        if is_aged(a) {
            Cell::text(BUCKETS[bucket(dpd)])
        } else {
            Cell::Empty
        },
        Cell::opt(a.plan.as_ref().map(|p| p.id.clone())),
        a.promise
            .as_ref()
            .map_or(Cell::Empty, |p| amount(p.amount_minor, c)),
        Cell::opt(a.promise.as_ref().map(|p| p.by.to_string())),
        Cell::text(a.tags.join(";")),
    ]
}

/// The aging report: a count and a sum per currency and bucket. Its size depends on the
/// currencies seen, never on the number of accounts.
#[derive(Debug, Default)]
pub struct Aging {
    cells: BTreeMap<(String, usize), (i64, i64)>,
}

impl Aging {
    /// Adds the account as it stood at the end of `as_of`: `paid_since` is what payments made
    /// after that day took off its balance (so an account they settled was still owed then),
    /// `interest_since` what plans added to it since, net (`Plan::interest_added_since`).
    /// A balance the CRM changed by hand since is not undone: it has no history.
    pub fn add(&mut self, a: &Account, as_of: Date, paid_since: i64, interest_since: i64) {
        let balance = a.balance_minor + paid_since - interest_since;
        let owed_then = match a.status {
            AccountStatus::Open | AccountStatus::Paused => true,
            AccountStatus::Settled => paid_since > 0,
            _ => false,
        };
        if balance <= 0 || !owed_then {
            return;
        }
        let cell = self
            .cells
            .entry((
                a.currency.code().to_string(),
                bucket(a.days_past_due(as_of)),
            ))
            .or_default();
        cell.0 += 1;
        cell.1 += balance;
    }

    /// Every bucket of every currency seen, empty ones included, so each currency's rows
    /// read as a complete report.
    pub fn rows(&self, as_of: Date) -> Vec<Vec<Cell>> {
        let currencies: std::collections::BTreeSet<&String> =
            self.cells.keys().map(|(c, _)| c).collect();
        let mut rows = Vec::new();
        for code in currencies {
            let currency = Currency::parse(code).expect("parsed from an account");
            for (i, name) in BUCKETS.iter().enumerate() {
                let (n, sum) = self
                    .cells
                    .get(&(code.clone(), i))
                    .copied()
                    .unwrap_or_default();
                rows.push(vec![
                    Cell::text(as_of.to_string()),
                    Cell::text(code.as_str()),
                    Cell::text(*name),
                    Cell::Int(n),
                    amount(sum, currency),
                ]);
            }
        }
        rows
    }
}

fn plan_status(s: PlanStatus) -> &'static str {
    match s {
        PlanStatus::Accepted => "accepted",
        PlanStatus::Active => "active",
        PlanStatus::Completed => "completed",
        PlanStatus::Broken => "broken",
        PlanStatus::Cancelled => "cancelled",
    }
}

pub fn plan_row(p: &Plan, tz: &TimeZone) -> Vec<Cell> {
    let t = &p.terms;
    let c = t.currency;
    let paid: i64 = p.paid_minor.iter().sum();
    let paid_instalments = t
        .instalments
        .iter()
        .zip(&p.paid_minor)
        .filter(|(i, paid)| **paid >= i.amount_minor)
        .count();
    vec![
        Cell::text(&p.id),
        Cell::text(p.account.as_str()),
        Cell::text(plan_status(p.status)),
        Cell::text(utc(p.accepted_at)),
        Cell::text(local(p.accepted_at, tz)),
        Cell::text(&p.accepted_by),
        Cell::text(c.code()),
        amount(t.balance_minor, c),
        amount(t.discount_minor, c),
        amount(t.interest_minor, c),
        amount(t.total_minor, c),
        amount(paid, c),
        amount((t.total_minor - paid).max(0), c),
        Cell::Int(t.instalments.len() as i64),
        Cell::Int(paid_instalments as i64),
        Cell::opt(
            t.instalments
                .iter()
                .map(|i| i.due)
                .min()
                .map(|d| d.to_string()),
        ),
        Cell::opt(t.last_due().map(|d| d.to_string())),
        Cell::Int(i64::from(p.grace_days)),
    ]
}

pub fn attempt_row(a: &ContactAttempt, tz: &TimeZone) -> Vec<Cell> {
    vec![
        Cell::text(utc(a.decided_at)),
        Cell::text(local(a.decided_at, tz)),
        Cell::text("attempt"),
        Cell::text(a.account.as_str()),
        Cell::text(a.debtor.as_str()),
        Cell::text(&a.decision_id),
        Cell::text(a.status.as_str()),
        Cell::opt(a.error.clone()),
        Cell::text(a.channel.as_str()),
        Cell::text(&a.template),
        Cell::opt(a.delivery.clone()),
        Cell::opt(a.provider_message_id.clone()),
        a.error_code.map_or(Cell::Empty, Cell::Int),
    ]
}

pub fn decision_row(account: &Account, d: &Decision, tz: &TimeZone) -> Vec<Cell> {
    vec![
        Cell::text(utc(d.at)),
        Cell::text(local(d.at, tz)),
        Cell::text("decision"),
        Cell::text(account.id.as_str()),
        Cell::text(account.debtor.as_str()),
        Cell::opt(d.decision_id.clone()),
        Cell::text(&d.outcome),
        Cell::text(&d.reason),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ]
}

/// Sums of every amount column, per currency: what the job record reports, so a reader can
/// check a file against it.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// A handful of entries (currencies × amount columns): a list beats a map here.
    sums: Vec<(Currency, &'static str, i64)>,
}

impl Totals {
    pub fn add(&mut self, columns: &[&'static str], row: &[Cell]) {
        for (name, cell) in columns.iter().zip(row) {
            if let Cell::Amount { minor, currency } = cell {
                match self
                    .sums
                    .iter_mut()
                    .find(|(c, n, _)| c == currency && n == name)
                {
                    Some((_, _, sum)) => *sum = sum.saturating_add(*minor),
                    None => self.sums.push((*currency, name, *minor)),
                }
            }
        }
    }

    pub fn minor(&self, currency: Currency, column: &str) -> i64 {
        self.sums
            .iter()
            .find(|(c, n, _)| *c == currency && *n == column)
            .map_or(0, |(_, _, v)| *v)
    }

    /// `{"CLP": {"amount": "150000", …}}`: decimal strings, as in the files.
    pub fn to_map(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (currency, column, minor) in &self.sums {
            out.entry(currency.code().to_string())
                .or_default()
                .insert((*column).to_string(), decimal(*minor, *currency));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, DebtorId, Money, PaymentId, TenantId};

    fn account(balance: i64, due: &str, status: AccountStatus) -> Account {
        Account {
            status,
            tags: vec!["a".into(), "b".into()],
            version: 1,
            ..Account::new(
                TenantId::parse("t").unwrap(),
                AccountId::parse("A-1").unwrap(),
                DebtorId::parse("d-1").unwrap(),
                Currency::parse("EUR").unwrap(),
                10_000,
                balance,
                due.parse().unwrap(),
            )
        }
    }

    #[test]
    fn every_row_fills_every_column() {
        let tz = TimeZone::get("America/Santiago").unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let p = Payment {
            tenant: TenantId::parse("t").unwrap(),
            account: AccountId::parse("A-1").unwrap(),
            id: PaymentId::parse("p-1").unwrap(),
            amount: Money::new(15_000, eur),
            paid_at: "2026-03-16T15:00:00Z".parse().unwrap(),
            method: "transfer".into(),
            source: "crm".into(),
            applied_minor: 12_000,
            forgiven_minor: 0,
        };
        let row = payment_row(&p, Some("2026-03-17T13:00:00Z".parse().unwrap()), &tz);
        assert_eq!(row.len(), columns(Kind::Payments).len());
        let text: Vec<String> = row.iter().map(Cell::to_text).collect();
        assert_eq!(text[0], "2026-03-16T15:00:00.000Z");
        assert_eq!(text[1], "2026-03-16T12:00:00.000-03:00");
        assert_eq!(&text[5..8], ["150.00", "120.00", "30.00"]);
        assert_eq!(text[10], "2026-03-17T13:00:00.000Z");
        let c = CreditNetted {
            tenant: p.tenant.clone(),
            account: p.account.clone(),
            id: CreditNetted::id_for(7),
            amount: Money::new(2_000, eur),
            at: "2026-03-18T15:00:00Z".parse().unwrap(),
            stated_minor: 2_000,
            balance_minor: 0,
            credit_minor: 1_000,
        };
        let row = credit_row(&c, &tz);
        assert_eq!(row.len(), columns(Kind::Payments).len());
        let text: Vec<String> = row.iter().map(Cell::to_text).collect();
        assert_eq!(text[2], "credit~7");
        assert_eq!(&text[5..10], ["0.00", "20.00", "-20.00", "credit", "cobro"]);
        assert_eq!(text[10], "2026-03-18T15:00:00.000Z");
        let a = account(5_000, "2026-01-01", AccountStatus::Open);
        let row = account_row(&a, "2026-03-01".parse().unwrap());
        assert_eq!(row.len(), columns(Kind::Accounts).len());
        assert_eq!(row[9], Cell::Int(59));
        assert_eq!(row[10], Cell::text("31-60"));
        assert_eq!(row[14], Cell::text("a;b"));
    }

    #[test]
    fn aging_buckets_by_days_past_due() {
        let as_of: Date = "2026-03-31".parse().unwrap();
        let mut aging = Aging::default();
        aging.add(&account(10, "2026-04-10", AccountStatus::Open), as_of, 0, 0);
        aging.add(&account(20, "2026-03-01", AccountStatus::Open), as_of, 0, 0);
        aging.add(
            &account(30, "2026-03-01", AccountStatus::Paused),
            as_of,
            0,
            0,
        );
        aging.add(&account(40, "2025-01-01", AccountStatus::Open), as_of, 0, 0);
        // Not owed or not collectable: not aged.
        aging.add(&account(0, "2025-01-01", AccountStatus::Open), as_of, 0, 0);
        aging.add(
            &account(50, "2025-01-01", AccountStatus::Closed),
            as_of,
            0,
            0,
        );
        let rows = aging.rows(as_of);
        assert_eq!(rows.len(), BUCKETS.len());
        let summary: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r[2].to_text(), r[3].to_text(), r[4].to_text()))
            .collect();
        assert_eq!(summary[0], ("current".into(), "1".into(), "0.10".into()));
        assert_eq!(summary[1], ("1-30".into(), "2".into(), "0.50".into()));
        assert_eq!(summary[2], ("31-60".into(), "0".into(), "0.00".into()));
        assert_eq!(summary[5], ("121+".into(), "1".into(), "0.40".into()));
        assert_eq!(bucket(30), 1);
        assert_eq!(bucket(31), 2);
        assert_eq!(bucket(121), 5);
    }

    #[test]
    fn aging_puts_back_what_was_paid_after_the_day() {
        let as_of: Date = "2026-03-31".parse().unwrap();
        let mut aging = Aging::default();
        // Paid 5 since: it owed 15 then.
        aging.add(&account(10, "2026-03-20", AccountStatus::Open), as_of, 5, 0);
        // Settled since by a payment of 7: it owed 7 then.
        aging.add(
            &account(0, "2026-03-20", AccountStatus::Settled),
            as_of,
            7,
            0,
        );
        // Settled before: not owed then.
        aging.add(
            &account(0, "2026-03-20", AccountStatus::Settled),
            as_of,
            0,
            0,
        );
        let rows = aging.rows(as_of);
        assert_eq!(rows[1][3].to_text(), "2");
        assert_eq!(rows[1][4].to_text(), "0.22");
    }

    #[test]
    fn totals_add_amount_columns_per_currency() {
        let eur = Currency::parse("EUR").unwrap();
        let clp = Currency::parse("CLP").unwrap();
        let cols = columns(Kind::Aging);
        let mut t = Totals::default();
        t.add(
            cols,
            &[
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Int(3),
                amount(105, eur),
            ],
        );
        t.add(
            cols,
            &[
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Int(3),
                amount(200, eur),
            ],
        );
        t.add(
            cols,
            &[
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Int(1),
                amount(7, clp),
            ],
        );
        assert_eq!(t.minor(eur, "balance"), 305);
        let map = t.to_map();
        assert_eq!(map["EUR"]["balance"], "3.05");
        assert_eq!(map["CLP"]["balance"], "7");
        assert_eq!(map.len(), 2);
    }
}
