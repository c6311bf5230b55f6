//! Builds payment plans from an account's balance and the tenant's rules: instalments on a
//! schedule, an optional down payment, optional simple interest, settlement offers, and the
//! shortest plans a debtor says they can afford.
//!
//! Rounding: amounts are integer minor units of the account's currency. Interest is rounded
//! half up to the minor unit once, on the whole plan; the financed total is then split into
//! instalments of equal size, and the remainder of that division goes one minor unit at a time
//! to the first instalments, so they add up exactly to the total and never differ by more than
//! one minor unit.

use jiff::civil::{Date, Weekday};
use jiff::Span;
use serde::{Deserialize, Serialize};

use crate::compliance::holidays::is_holiday;
use crate::compliance::PolicyError;
use crate::domain::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Weekly,
    Biweekly,
    Monthly,
}

impl Frequency {
    /// The `n`-th date after `first` (0 is `first`). Months keep the day, or the month's last
    /// day when it is shorter (31 Jan → 28 Feb → 31 Mar).
    pub fn nth(self, first: Date, n: u32) -> Option<Date> {
        let span = match self {
            Frequency::Weekly => Span::new().weeks(i64::from(n)),
            Frequency::Biweekly => Span::new().weeks(2 * i64::from(n)),
            Frequency::Monthly => Span::new().months(i64::from(n)),
        };
        first.checked_add(span).ok()
    }

    /// Days in one period, for interest (a month counts as 30).
    fn days(self) -> i64 {
        match self {
            Frequency::Weekly => 7,
            Frequency::Biweekly => 14,
            Frequency::Monthly => 30,
        }
    }
}

/// A tenant's rules for plans. Defaults: up to 12 instalments, any frequency, first payment
/// within 15 days, no interest, no settlement offers, 5 days of grace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanRules {
    pub max_instalments: u32,
    pub frequencies: Vec<Frequency>,
    /// No instalment below this (minor units); 0: no minimum.
    pub min_instalment_minor: i64,
    pub first_due_within_days: u32,
    /// Move due dates off Saturdays and Sundays (to the next working day).
    pub skip_weekends: bool,
    /// Move due dates off this calendar's holidays too (`CL`, `BR-SP` …).
    pub holiday_calendar: Option<String>,
    /// The least down payment, in percent of the balance, when the debtor makes one.
    pub min_down_payment_percent: u32,
    /// Simple interest on the financed amount, in basis points a year (0: none).
    pub annual_interest_bps: u32,
    pub settlement: Option<SettlementRules>,
    /// Days an instalment may be late before the plan is broken.
    pub grace_days: u32,
    /// The furthest a promise to pay may reach, in days from today.
    pub max_promise_days: u32,
}

impl Default for PlanRules {
    fn default() -> Self {
        Self {
            max_instalments: 12,
            frequencies: vec![Frequency::Weekly, Frequency::Biweekly, Frequency::Monthly],
            min_instalment_minor: 0,
            first_due_within_days: 15,
            skip_weekends: true,
            holiday_calendar: None,
            min_down_payment_percent: 0,
            annual_interest_bps: 0,
            settlement: None,
            grace_days: 5,
            max_promise_days: 15,
        }
    }
}

/// Settlement offers the tenant allows: pay at least `min_percent` of the balance, by at most
/// `max_days` from today, in at most `max_instalments`, and the rest is forgiven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementRules {
    pub min_percent: u32,
    pub max_days: u32,
    #[serde(default = "one")]
    pub max_instalments: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub instalments: u32,
    pub frequency: Frequency,
    pub first_due: Date,
    #[serde(default)]
    pub down_payment_minor: i64,
    /// A settlement: pay this percent of the balance (the rest is forgiven).
    #[serde(default)]
    pub settlement_percent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInstalment {
    /// 0 is the down payment, when there is one.
    pub number: u32,
    pub due: Date,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub frequency: Frequency,
    /// The balance the plan settles.
    pub balance_minor: i64,
    /// Forgiven by a settlement.
    pub discount_minor: i64,
    pub interest_minor: i64,
    /// What the debtor pays in all: balance − discount + interest.
    pub total_minor: i64,
    pub instalments: Vec<PlannedInstalment>,
    pub currency: crate::domain::Currency,
}

impl PlanTerms {
    pub fn last_due(&self) -> Option<Date> {
        self.instalments.iter().map(|i| i.due).max()
    }
}

fn err(field: &str, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        message: message.into(),
    }
}

/// The due date moved forward off weekends and holidays, as the tenant asks.
fn working_day(mut day: Date, rules: &PlanRules) -> Result<Date, PolicyError> {
    for _ in 0..14 {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let holiday = match &rules.holiday_calendar {
            Some(cal) => {
                is_holiday(cal, day).map_err(|e| err("holiday_calendar", e.to_string()))?
            }
            None => false,
        };
        if !(holiday || (rules.skip_weekends && weekend)) {
            return Ok(day);
        }
        day = day
            .tomorrow()
            .map_err(|e| err("first_due", e.to_string()))?;
    }
    Err(err("first_due", "no working day within two weeks"))
}

/// Builds one plan. Errors name the field of the request (or of the rules) at fault.
pub fn build(
    balance: Money,
    rules: &PlanRules,
    req: &PlanRequest,
    today: Date,
) -> Result<PlanTerms, PolicyError> {
    let currency = balance.currency;
    let balance_minor = balance.minor;
    if balance_minor <= 0 {
        return Err(err("balance_minor", "nothing is owed"));
    }
    if !rules.frequencies.contains(&req.frequency) {
        return Err(err("frequency", "not offered by the tenant"));
    }
    if req.instalments == 0 || req.instalments > rules.max_instalments {
        return Err(err(
            "instalments",
            format!("must be 1 to {}", rules.max_instalments),
        ));
    }
    let latest_first = today
        .checked_add(Span::new().days(i64::from(rules.first_due_within_days)))
        .map_err(|e| err("first_due", e.to_string()))?;
    if req.first_due < today || req.first_due > latest_first {
        return Err(err(
            "first_due",
            format!("must be between {today} and {latest_first}"),
        ));
    }
    // A settlement forgives part of the balance, within the tenant's bounds.
    let discount_minor = match req.settlement_percent {
        None => 0,
        Some(percent) => {
            let Some(s) = &rules.settlement else {
                return Err(err(
                    "settlement_percent",
                    "the tenant makes no settlement offers",
                ));
            };
            if percent < s.min_percent || percent > 100 {
                return Err(err(
                    "settlement_percent",
                    format!("must be {} to 100", s.min_percent),
                ));
            }
            if req.instalments > s.max_instalments {
                return Err(err(
                    "instalments",
                    format!("a settlement takes at most {} payments", s.max_instalments),
                ));
            }
            let pay = percent_of(balance_minor, percent);
            balance_minor - pay
        }
    };
    let owed = balance_minor - discount_minor;
    if req.down_payment_minor < 0 || req.down_payment_minor >= owed {
        return Err(err(
            "down_payment_minor",
            "must be at least 0 and below what is owed",
        ));
    }
    if req.down_payment_minor > 0
        && req.down_payment_minor < percent_of(balance_minor, rules.min_down_payment_percent)
    {
        return Err(err(
            "down_payment_minor",
            format!(
                "must be at least {}% of the balance",
                rules.min_down_payment_percent
            ),
        ));
    }
    // The down payment is a payment like the others: it counts toward a settlement's number
    // of payments and may not be below the least instalment the tenant accepts.
    if req.down_payment_minor > 0 {
        if let (Some(_), Some(s)) = (req.settlement_percent, &rules.settlement) {
            if req.instalments + 1 > s.max_instalments {
                return Err(err(
                    "down_payment_minor",
                    format!(
                        "a settlement takes at most {} payments, the down payment among them",
                        s.max_instalments
                    ),
                ));
            }
        }
        if req.down_payment_minor < rules.min_instalment_minor {
            return Err(err(
                "down_payment_minor",
                format!(
                    "must be at least the least instalment the tenant accepts ({})",
                    Money::new(rules.min_instalment_minor, currency).display()
                ),
            ));
        }
    }
    let financed = owed - req.down_payment_minor;
    // Dates first: interest runs to the last one.
    let mut dates = Vec::with_capacity(req.instalments as usize);
    for n in 0..req.instalments {
        let nominal = req
            .frequency
            .nth(req.first_due, n)
            .ok_or_else(|| err("first_due", "out of range"))?;
        dates.push(working_day(nominal, rules)?);
    }
    let settlement_deadline = rules.settlement.as_ref().and_then(|s| {
        today
            .checked_add(Span::new().days(i64::from(s.max_days)))
            .ok()
    });
    if req.settlement_percent.is_some() {
        if let (Some(limit), Some(last)) = (settlement_deadline, dates.last()) {
            if *last > limit {
                return Err(err(
                    "first_due",
                    format!("a settlement must be paid by {limit}"),
                ));
            }
        }
    }
    // Simple interest on the financed amount for the plan's length, no interest on a
    // settlement; half up to the minor unit.
    let interest_minor = if rules.annual_interest_bps == 0 || req.settlement_percent.is_some() {
        0
    } else {
        let days = i64::from(req.instalments) * req.frequency.days();
        let num = i128::from(financed) * i128::from(rules.annual_interest_bps) * i128::from(days);
        let den = 10_000i128 * 365;
        ((num + den / 2) / den) as i64
    };
    let to_split = financed + interest_minor;
    let parts = Money::new(to_split, currency).split(req.instalments);
    if rules.min_instalment_minor > 0 && parts.iter().any(|p| p.minor < rules.min_instalment_minor)
    {
        return Err(err(
            "instalments",
            format!(
                "instalments would be below the least the tenant accepts ({})",
                Money::new(rules.min_instalment_minor, currency).display()
            ),
        ));
    }
    let mut instalments = Vec::with_capacity(req.instalments as usize + 1);
    if req.down_payment_minor > 0 {
        instalments.push(PlannedInstalment {
            number: 0,
            due: today,
            amount_minor: req.down_payment_minor,
        });
    }
    for (i, (due, amount)) in dates.into_iter().zip(parts).enumerate() {
        instalments.push(PlannedInstalment {
            number: i as u32 + 1,
            due,
            amount_minor: amount.minor,
        });
    }
    Ok(PlanTerms {
        frequency: req.frequency,
        balance_minor,
        discount_minor,
        interest_minor,
        total_minor: owed + interest_minor,
        instalments,
        currency,
    })
}

/// `percent` of `amount`, rounded half up to the minor unit.
fn percent_of(amount: i64, percent: u32) -> i64 {
    // Divided before narrowing: the product needs i128, the result fits i64 up to 100 %.
    let exact = (i128::from(amount) * i128::from(percent) + 50) / 100;
    i64::try_from(exact).unwrap_or(i64::MAX)
}

/// Plans for a debtor who says they can pay `per_period` every period of `frequency`: the
/// shortest plan that fits, then one more instalment (a lower payment), then the tenant's
/// settlement offer when it has one. At most three, in that order. `Err` says why none fits.
pub fn affordable(
    balance: Money,
    rules: &PlanRules,
    per_period: Money,
    frequency: Frequency,
    today: Date,
) -> Result<Vec<PlanTerms>, PolicyError> {
    // Errors name the API's field (`per_period_minor`), which is what the caller sent.
    if per_period.currency != balance.currency {
        return Err(err(
            "per_period_minor",
            "in another currency than the account",
        ));
    }
    if per_period.minor <= 0 {
        return Err(err("per_period_minor", "must be positive"));
    }
    if !rules.frequencies.contains(&frequency) {
        return Err(err("frequency", "not offered by the tenant"));
    }
    let first_due = working_day(
        today
            .checked_add(Span::new().days(i64::from(rules.first_due_within_days.min(7))))
            .map_err(|e| err("first_due", e.to_string()))?,
        rules,
    )?;
    let request = |instalments| PlanRequest {
        instalments,
        frequency,
        first_due,
        down_payment_minor: 0,
        settlement_percent: None,
    };
    // Interest grows with length, so look for the first length whose instalments fit.
    let mut options = Vec::new();
    let mut shortest = None;
    for n in 1..=rules.max_instalments {
        if let Ok(plan) = build(balance, rules, &request(n), today) {
            if plan
                .instalments
                .iter()
                .all(|i| i.amount_minor <= per_period.minor)
            {
                shortest = Some(n);
                options.push(plan);
                break;
            }
        }
    }
    let Some(n) = shortest else {
        return Err(err(
            "per_period_minor",
            format!(
                "no plan of at most {} instalments fits {} a period",
                rules.max_instalments,
                per_period.display()
            ),
        ));
    };
    if n < rules.max_instalments {
        if let Ok(plan) = build(balance, rules, &request(n + 1), today) {
            options.push(plan);
        }
    }
    if let Some(s) = &rules.settlement {
        let settle = PlanRequest {
            instalments: 1,
            frequency,
            first_due,
            down_payment_minor: 0,
            settlement_percent: Some(s.min_percent),
        };
        if let Ok(plan) = build(balance, rules, &settle, today) {
            options.push(plan);
        }
    }
    options.truncate(3);
    Ok(options)
}
