//! Plans: exact sums, dates, rules, affordability, allocation.

use jiff::civil::{date, Date, Weekday};
use proptest::prelude::*;

use super::*;
use crate::domain::{Currency, Money};

fn clp(minor: i64) -> Money {
    Money::new(minor, Currency::parse("CLP").unwrap())
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap())
}

fn req(n: u32, f: Frequency, first: Date) -> PlanRequest {
    PlanRequest {
        instalments: n,
        frequency: f,
        first_due: first,
        down_payment_minor: 0,
        settlement_percent: None,
    }
}

#[test]
fn instalments_add_up_and_the_first_ones_carry_the_remainder() {
    let today = date(2026, 3, 16);
    let p = build(
        clp(100_000),
        &PlanRules::default(),
        &req(3, Frequency::Monthly, date(2026, 3, 20)),
        today,
    )
    .unwrap();
    let amounts: Vec<i64> = p.instalments.iter().map(|i| i.amount_minor).collect();
    assert_eq!(amounts, [33_334, 33_333, 33_333]);
    assert_eq!(p.total_minor, 100_000);
    // Monthly keeps the day; 2026-04-20 is a Monday, 2026-05-20 a Wednesday.
    let dates: Vec<Date> = p.instalments.iter().map(|i| i.due).collect();
    assert_eq!(
        dates,
        [date(2026, 3, 20), date(2026, 4, 20), date(2026, 5, 20)]
    );
}

#[test]
fn dates_move_off_weekends_and_holidays_and_month_ends_hold() {
    let today = date(2026, 1, 20);
    let rules = PlanRules {
        holiday_calendar: Some("CL".into()),
        ..PlanRules::default()
    };
    // 31 Jan 2026 is a Saturday → Monday 2 Feb; 28 Feb a Saturday → Monday 2 Mar.
    let p = build(
        clp(90_000),
        &rules,
        &req(3, Frequency::Monthly, date(2026, 1, 31)),
        today,
    )
    .unwrap();
    let dates: Vec<Date> = p.instalments.iter().map(|i| i.due).collect();
    assert_eq!(
        dates,
        [date(2026, 2, 2), date(2026, 3, 2), date(2026, 3, 31)]
    );
    // 1 May (Labour Day in Chile, a Friday) → Monday 4 May.
    let p = build(
        clp(10_000),
        &rules,
        &req(1, Frequency::Weekly, date(2026, 5, 1)),
        date(2026, 4, 20),
    )
    .unwrap();
    assert_eq!(p.instalments[0].due, date(2026, 5, 4));
}

#[test]
fn down_payment_interest_and_settlement() {
    let today = date(2026, 3, 16);
    let rules = PlanRules {
        annual_interest_bps: 1200, // 12% a year, simple
        min_down_payment_percent: 10,
        settlement: Some(SettlementRules {
            min_percent: 80,
            max_days: 30,
            max_instalments: 2,
        }),
        ..PlanRules::default()
    };
    let mut r = req(6, Frequency::Monthly, date(2026, 3, 20));
    r.down_payment_minor = 20_000;
    let p = build(eur(120_000), &rules, &r, today).unwrap();
    assert_eq!(
        p.instalments[0].number, 0,
        "the down payment comes first, today"
    );
    assert_eq!(p.instalments[0].amount_minor, 20_000);
    // 100,000 financed × 12% × 180/365 days = 5,917.8 → 5,918.
    assert_eq!(p.interest_minor, 5_918);
    assert_eq!(p.total_minor, 125_918);
    assert_eq!(
        p.instalments.iter().map(|i| i.amount_minor).sum::<i64>(),
        125_918
    );
    r.down_payment_minor = 5_000;
    assert_eq!(
        build(eur(120_000), &rules, &r, today).unwrap_err().field,
        "down_payment_minor"
    );
    // Settle for 80% in one payment within 30 days: 20% forgiven, no interest.
    let mut s = req(1, Frequency::Monthly, date(2026, 3, 30));
    s.settlement_percent = Some(80);
    let p = build(eur(120_000), &rules, &s, today).unwrap();
    assert_eq!(
        (p.discount_minor, p.total_minor, p.interest_minor),
        (24_000, 96_000, 0)
    );
    // The largest balance cobro takes: the percentage is exact, not wrapped.
    s.settlement_percent = Some(100);
    let max = crate::domain::MAX_MINOR;
    let p = build(eur(max), &rules, &s, today).unwrap();
    assert_eq!((p.total_minor, p.discount_minor), (max, 0));
    s.settlement_percent = Some(80);
    let p = build(eur(max), &rules, &s, today).unwrap();
    assert_eq!(p.total_minor, max / 10 * 8);
    s.settlement_percent = Some(70);
    assert_eq!(
        build(eur(120_000), &rules, &s, today).unwrap_err().field,
        "settlement_percent"
    );
    s.settlement_percent = Some(90);
    s.instalments = 3;
    assert_eq!(
        build(eur(120_000), &rules, &s, today).unwrap_err().field,
        "instalments"
    );
}

/// A down payment is one of a settlement's payments, and no smaller than the least instalment.
#[test]
fn a_down_payment_counts_as_a_payment_and_is_no_smaller_than_an_instalment() {
    let today = date(2026, 3, 16);
    let mut rules = PlanRules {
        min_instalment_minor: 5_000,
        settlement: Some(SettlementRules {
            min_percent: 80,
            max_days: 30,
            max_instalments: 1,
        }),
        ..PlanRules::default()
    };
    // One payment allowed: one instalment and a down payment are two.
    let mut settle = req(1, Frequency::Weekly, date(2026, 3, 23));
    settle.settlement_percent = Some(80);
    settle.down_payment_minor = 20_000;
    let e = build(clp(100_000), &rules, &settle, today).unwrap_err();
    assert_eq!(e.field, "down_payment_minor", "{e:?}");
    assert!(e.message.contains("at most 1 payments"), "{e:?}");
    settle.down_payment_minor = 0;
    assert_eq!(
        build(clp(100_000), &rules, &settle, today)
            .unwrap()
            .instalments
            .len(),
        1
    );
    // Two allowed: a down payment and one instalment fit, two instalments more do not.
    rules.settlement.as_mut().unwrap().max_instalments = 2;
    settle.down_payment_minor = 20_000;
    let p = build(clp(100_000), &rules, &settle, today).unwrap();
    assert_eq!(
        p.instalments
            .iter()
            .map(|i| (i.number, i.amount_minor))
            .collect::<Vec<_>>(),
        [(0, 20_000), (1, 60_000)]
    );
    settle.instalments = 2;
    assert_eq!(
        build(clp(100_000), &rules, &settle, today)
            .unwrap_err()
            .field,
        "down_payment_minor"
    );
    settle.instalments = 3;
    assert_eq!(
        build(clp(100_000), &rules, &settle, today)
            .unwrap_err()
            .field,
        "instalments",
        "too many instalments without the down payment already"
    );
    // The least instalment holds for the down payment too.
    let mut plan = req(3, Frequency::Monthly, date(2026, 3, 20));
    plan.down_payment_minor = 1;
    let e = build(clp(100_000), &rules, &plan, today).unwrap_err();
    assert_eq!(e.field, "down_payment_minor", "{e:?}");
    assert!(e.message.contains("5000 CLP"), "{e:?}");
    plan.down_payment_minor = 5_000;
    let p = build(clp(100_000), &rules, &plan, today).unwrap();
    assert_eq!(p.instalments[0].amount_minor, 5_000);
    assert_eq!(p.total_minor, 100_000);
}

#[test]
fn requests_outside_the_rules_name_the_field() {
    let today = date(2026, 3, 16);
    let rules = PlanRules {
        max_instalments: 6,
        frequencies: vec![Frequency::Monthly],
        min_instalment_minor: 5_000,
        ..PlanRules::default()
    };
    let cases = [
        (req(7, Frequency::Monthly, date(2026, 3, 20)), "instalments"),
        (req(0, Frequency::Monthly, date(2026, 3, 20)), "instalments"),
        (req(2, Frequency::Weekly, date(2026, 3, 20)), "frequency"),
        (req(2, Frequency::Monthly, date(2026, 3, 10)), "first_due"),
        (req(2, Frequency::Monthly, date(2026, 5, 10)), "first_due"),
        (req(6, Frequency::Monthly, date(2026, 3, 20)), "instalments"), // 20,000 / 6 < 5,000
    ];
    for (r, field) in cases {
        assert_eq!(
            build(clp(20_000), &rules, &r, today).unwrap_err().field,
            field,
            "{r:?}"
        );
    }
}

#[test]
fn affordability_offers_the_shortest_plan_that_fits_then_alternatives() {
    let today = date(2026, 3, 16);
    let rules = PlanRules {
        settlement: Some(SettlementRules {
            min_percent: 85,
            max_days: 30,
            max_instalments: 1,
        }),
        ..PlanRules::default()
    };
    let options = affordable(clp(100_000), &rules, clp(30_000), Frequency::Monthly, today).unwrap();
    assert_eq!(options.len(), 3);
    assert_eq!(
        options[0].instalments.len(),
        4,
        "25,000 a month fits 30,000"
    );
    assert_eq!(options[1].instalments.len(), 5);
    assert_eq!(options[2].discount_minor, 15_000, "the settlement offer");
    assert!(options[0]
        .instalments
        .iter()
        .all(|i| i.amount_minor <= 30_000));
    let none = affordable(
        clp(100_000),
        &PlanRules::default(),
        clp(5_000),
        Frequency::Monthly,
        today,
    );
    assert_eq!(none.unwrap_err().field, "per_period_minor");
    let weekly_only = PlanRules {
        frequencies: vec![Frequency::Weekly],
        ..PlanRules::default()
    };
    let monthly = affordable(
        clp(100_000),
        &weekly_only,
        clp(30_000),
        Frequency::Monthly,
        today,
    );
    assert_eq!(monthly.unwrap_err().field, "frequency");
}

#[test]
fn payments_go_to_the_oldest_instalment_first_and_complete_the_plan() {
    let today = date(2026, 3, 16);
    let terms = build(
        clp(90_000),
        &PlanRules::default(),
        &req(3, Frequency::Monthly, date(2026, 3, 20)),
        today,
    )
    .unwrap();
    let mut plan = Plan {
        tenant: crate::domain::TenantId::parse("t").unwrap(),
        account: crate::domain::AccountId::parse("a").unwrap(),
        id: "p1".into(),
        status: PlanStatus::Accepted,
        paid_minor: vec![0; terms.instalments.len()],
        terms,
        accepted_at: "2026-03-16T12:00:00Z".parse().unwrap(),
        accepted_by: "crm".into(),
        grace_days: 5,
        ended_at: None,
        interest_reversed_minor: 0,
    };
    assert_eq!(plan.allocate(40_000), 0);
    assert_eq!(plan.paid_minor, [30_000, 10_000, 0]);
    assert_eq!(plan.status, PlanStatus::Active);
    assert_eq!(plan.next_open(), Some((date(2026, 4, 20), 20_000)));
    assert!(
        !plan.is_broken_on(date(2026, 4, 25)),
        "within the grace days"
    );
    assert!(
        plan.is_broken_on(date(2026, 4, 26)),
        "more than 5 days late"
    );
    // The account carries the plan's grace days; a reference written before it did reads none
    // (the reminders then ask the plan).
    let r = plan.reference().unwrap();
    assert_eq!(r.grace_days, Some(5));
    assert_eq!(
        r.unpaid,
        [
            Unpaid {
                due: date(2026, 4, 20),
                amount_minor: 20_000
            },
            Unpaid {
                due: date(2026, 5, 20),
                amount_minor: 30_000
            }
        ],
        "what is left of each instalment not fully paid"
    );
    let mut old = serde_json::to_value(&r).unwrap();
    old.as_object_mut().unwrap().remove("grace_days");
    let old: PlanRef = serde_json::from_value(old).unwrap();
    assert_eq!(old.grace_days, None);
    assert_eq!(plan.allocate(60_000), 10_000, "the overpayment comes back");
    assert_eq!(plan.status, PlanStatus::Completed);
    assert_eq!(plan.reference(), None);
}

proptest! {
    /// Any plan the builder accepts sums exactly to what the debtor owes (balance − discount +
    /// interest), has instalments that differ by at most one minor unit (down payment apart),
    /// due dates that never go backwards, never on a weekend, never before the first due date.
    #[test]
    fn plans_always_add_up_and_dates_obey_the_rules(
        balance in 1i64..50_000_000,
        n in 1u32..=24,
        freq in prop_oneof![Just(Frequency::Weekly), Just(Frequency::Biweekly), Just(Frequency::Monthly)],
        first_offset in 0i64..15,
        down_percent in 0u32..60,
        interest_bps in prop_oneof![Just(0u32), 1u32..5_000],
        exponent_eur in any::<bool>(),
    ) {
        let today = date(2026, 3, 16);
        let money = if exponent_eur { eur(balance) } else { clp(balance) };
        let rules = PlanRules { max_instalments: 24, annual_interest_bps: interest_bps, ..PlanRules::default() };
        let mut r = req(n, freq, today.checked_add(jiff::Span::new().days(first_offset)).unwrap());
        r.down_payment_minor = balance * i64::from(down_percent) / 100;
        if let Ok(p) = build(money, &rules, &r, today) {
            let sum: i64 = p.instalments.iter().map(|i| i.amount_minor).sum();
            prop_assert_eq!(sum, p.total_minor);
            prop_assert_eq!(p.total_minor, balance - p.discount_minor + p.interest_minor);
            let regular: Vec<i64> = p.instalments.iter().filter(|i| i.number > 0).map(|i| i.amount_minor).collect();
            prop_assert_eq!(regular.len() as u32, n);
            let (lo, hi) = (regular.iter().min().unwrap(), regular.iter().max().unwrap());
            prop_assert!(hi - lo <= 1);
            prop_assert!(regular.windows(2).all(|w| w[0] >= w[1]), "remainder goes first");
            let dates: Vec<Date> = p.instalments.iter().filter(|i| i.number > 0).map(|i| i.due).collect();
            prop_assert!(dates.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(dates.iter().all(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)));
            prop_assert!(dates[0] >= r.first_due);
        }
    }

    /// However a payment stream is split, allocation never loses or invents money.
    #[test]
    fn allocation_conserves_money(payments in proptest::collection::vec(1i64..40_000, 1..10)) {
        let today = date(2026, 3, 16);
        let terms = build(clp(90_000), &PlanRules::default(), &req(3, Frequency::Monthly, date(2026, 3, 20)), today).unwrap();
        let mut plan = Plan {
            tenant: crate::domain::TenantId::parse("t").unwrap(),
            account: crate::domain::AccountId::parse("a").unwrap(),
            id: "p".into(), status: PlanStatus::Accepted, paid_minor: vec![0; 3], terms,
            accepted_at: "2026-03-16T12:00:00Z".parse().unwrap(), accepted_by: "crm".into(), grace_days: 5, ended_at: None, interest_reversed_minor: 0,
        };
        let mut left = 0;
        for p in &payments {
            left += plan.allocate(*p);
        }
        let paid: i64 = plan.paid_minor.iter().sum();
        prop_assert_eq!(paid + left, payments.iter().sum::<i64>());
        prop_assert!(paid <= 90_000);
        prop_assert_eq!(plan.status == PlanStatus::Completed, paid == 90_000);
    }
}
