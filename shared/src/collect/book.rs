//! A tenant's strategies: delinquency buckets (ranges of days past due, as the lender defines
//! them), strategies, and segments that choose a strategy by bucket, balance, product and tags.
//! Validated when loaded, with errors that name the field.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::strategy::Strategy;
use crate::compliance::PolicyError;
use crate::domain::Account;

/// Days past due from `from` to `to` (inclusive; no `to`: and beyond).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub name: String,
    pub from: i64,
    #[serde(default)]
    pub to: Option<i64>,
}

/// Accounts that match every condition given get the named strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub strategy: String,
    #[serde(default)]
    pub buckets: Vec<String>,
    #[serde(default)]
    pub min_balance_minor: Option<i64>,
    #[serde(default)]
    pub max_balance_minor: Option<i64>,
    #[serde(default)]
    pub products: Vec<String>,
    /// All of these tags must be on the account.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyBook {
    #[serde(default)]
    pub buckets: Vec<Bucket>,
    pub strategies: Vec<Strategy>,
    /// Tried in order; the first that matches chooses.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// The strategy of accounts no segment matches.
    pub default: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        message: message.into(),
    }
}

impl StrategyBook {
    /// The tenant's own templates its steps name, each name once per language.
    pub fn named_templates(&self) -> Vec<(crate::domain::Language, String)> {
        let named: std::collections::BTreeSet<_> = self
            .strategies
            .iter()
            .flat_map(|s| &s.steps)
            .flat_map(|step| &step.templates)
            .map(|(lang, name)| (*lang, name.clone()))
            .collect();
        named.into_iter().collect()
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut ids = std::collections::HashSet::new();
        let mut buttons = std::collections::BTreeMap::new();
        for (i, s) in self.strategies.iter().enumerate() {
            if s.id.trim().is_empty() {
                return Err(err(format!("strategies[{i}].id"), "is empty"));
            }
            if !ids.insert(s.id.as_str()) {
                return Err(err(
                    format!("strategies[{i}].id"),
                    format!("`{}` appears twice", s.id),
                ));
            }
            if s.steps.is_empty() {
                return Err(err(
                    format!("strategies[{i}].steps"),
                    "needs at least one step",
                ));
            }
            let mut days = std::collections::HashSet::new();
            for (j, step) in s.steps.iter().enumerate() {
                if !days.insert(step.day) {
                    return Err(err(
                        format!("strategies[{i}].steps[{j}].day"),
                        format!("day {} appears twice", step.day),
                    ));
                }
                if !(-60..=365).contains(&step.day) {
                    return Err(err(
                        format!("strategies[{i}].steps[{j}].day"),
                        "must be between -60 and 365 days from the due date",
                    ));
                }
                let mut seen = Vec::new();
                for (k, c) in step.channels.iter().enumerate() {
                    if seen.contains(c) {
                        return Err(err(
                            format!("strategies[{i}].steps[{j}].channels[{k}]"),
                            format!("{} appears twice", c.as_str()),
                        ));
                    }
                    seen.push(*c);
                }
                for (lang, name) in &step.templates {
                    let field = format!("strategies[{i}].steps[{j}].templates.{}", lang.as_str());
                    if name.trim().is_empty() {
                        return Err(err(field, "is empty"));
                    }
                    // One registered template has one set of buttons: two steps cannot say
                    // different things about it.
                    let button = super::templates::has_opt_out_button(step, name);
                    match buttons.insert((*lang, name.as_str()), (button, field.clone())) {
                        Some((before, other)) if before != button => {
                            return Err(err(
                                field,
                                format!(
                                    "`{name}` is named with opt_out_button {button} here and {before} at {other}"
                                ),
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, b) in self.buckets.iter().enumerate() {
            if !names.insert(b.name.as_str()) {
                return Err(err(
                    format!("buckets[{i}].name"),
                    format!("`{}` appears twice", b.name),
                ));
            }
            if b.from < 0 || b.to.is_some_and(|t| t < b.from) {
                return Err(err(format!("buckets[{i}]"), "needs 0 <= from <= to"));
            }
            for (j, other) in self.buckets.iter().enumerate().take(i) {
                let overlap = b.from <= other.to.unwrap_or(i64::MAX)
                    && other.from <= b.to.unwrap_or(i64::MAX);
                if overlap {
                    return Err(err(
                        format!("buckets[{i}]"),
                        format!("overlaps buckets[{j}] ({})", other.name),
                    ));
                }
            }
        }
        if !ids.contains(self.default.as_str()) {
            return Err(err("default", format!("no strategy `{}`", self.default)));
        }
        for (i, s) in self.segments.iter().enumerate() {
            if !ids.contains(s.strategy.as_str()) {
                return Err(err(
                    format!("segments[{i}].strategy"),
                    format!("no strategy `{}`", s.strategy),
                ));
            }
            for (j, b) in s.buckets.iter().enumerate() {
                if !names.contains(b.as_str()) {
                    return Err(err(
                        format!("segments[{i}].buckets[{j}]"),
                        format!("no bucket `{b}`"),
                    ));
                }
            }
            if let (Some(lo), Some(hi)) = (s.min_balance_minor, s.max_balance_minor) {
                if lo > hi {
                    return Err(err(
                        format!("segments[{i}].max_balance_minor"),
                        "is below min_balance_minor",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The bucket an account is in on `today`, by its days past due.
    pub fn bucket_of(&self, days_past_due: i64) -> Option<&str> {
        self.buckets
            .iter()
            .find(|b| b.from <= days_past_due && b.to.is_none_or(|t| days_past_due <= t))
            .map(|b| b.name.as_str())
    }

    /// The strategy for an account on `today`.
    pub fn choose(&self, account: &Account, today: Date) -> &Strategy {
        let bucket = self.bucket_of(account.days_past_due(today));
        let chosen = self.segments.iter().find(|s| {
            (s.buckets.is_empty() || bucket.is_some_and(|b| s.buckets.iter().any(|x| x == b)))
                && s.min_balance_minor
                    .is_none_or(|m| account.balance_minor >= m)
                && s.max_balance_minor
                    .is_none_or(|m| account.balance_minor <= m)
                && (s.products.is_empty()
                    || account
                        .product
                        .as_ref()
                        .is_some_and(|p| s.products.contains(p)))
                && s.tags.iter().all(|t| account.tags.contains(t))
        });
        let id = chosen.map_or(self.default.as_str(), |s| s.strategy.as_str());
        self.strategies
            .iter()
            .find(|s| s.id == id)
            .expect("validated: every strategy named exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::strategy::EndAction;
    use crate::domain::{
        AccountId, AccountStatus, ChannelKind, Currency, DebtorId, Language, TenantId,
    };
    use jiff::civil::date;

    fn book() -> StrategyBook {
        let mut soft = Strategy::on_days("soft", &[-3, 0, 3]);
        soft.steps[0].channels = vec![ChannelKind::Whatsapp];
        soft.steps[0]
            .templates
            .insert(Language::Es, "aviso_previo_suave".into());
        let mut hard = Strategy::on_days("late", &[30, 45, 60]);
        hard.end = EndAction::Handoff;
        let small = Strategy::on_days("small", &[0, 7]);
        StrategyBook {
            buckets: vec![
                Bucket {
                    name: "current".into(),
                    from: 0,
                    to: Some(29),
                },
                Bucket {
                    name: "30+".into(),
                    from: 30,
                    to: None,
                },
            ],
            strategies: vec![soft, hard, small],
            segments: vec![
                Segment {
                    strategy: "late".into(),
                    buckets: vec!["30+".into()],
                    ..Segment::default()
                },
                Segment {
                    strategy: "small".into(),
                    max_balance_minor: Some(10_000),
                    products: vec!["card".into()],
                    tags: vec!["vip".into()],
                    ..Segment::default()
                },
            ],
            default: "soft".into(),
        }
    }

    fn account(balance: i64, product: Option<&str>, tags: &[&str]) -> Account {
        Account {
            status: AccountStatus::Open,
            product: product.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Account::new(
                TenantId::parse("t").unwrap(),
                AccountId::parse("a").unwrap(),
                DebtorId::parse("d").unwrap(),
                Currency::parse("CLP").unwrap(),
                balance,
                balance,
                date(2026, 3, 1),
            )
        }
    }

    #[test]
    fn segments_choose_by_bucket_balance_product_and_tags() {
        let b = book();
        b.validate().unwrap();
        assert_eq!(b.bucket_of(0), Some("current"));
        assert_eq!(b.bucket_of(31), Some("30+"));
        let early = date(2026, 3, 5);
        let late = date(2026, 4, 15);
        assert_eq!(
            b.choose(&account(50_000, None, &[]), early).id,
            "soft",
            "default"
        );
        assert_eq!(
            b.choose(&account(50_000, None, &[]), late).id,
            "late",
            "by bucket"
        );
        assert_eq!(
            b.choose(&account(5_000, Some("card"), &["vip"]), early).id,
            "small"
        );
        assert_eq!(
            b.choose(&account(5_000, Some("card"), &[]), early).id,
            "soft",
            "all tags needed"
        );
        assert_eq!(
            b.choose(&account(50_000, Some("card"), &["vip"]), early).id,
            "soft",
            "balance"
        );
    }

    #[test]
    fn errors_name_the_field() {
        type Breaks = Box<dyn Fn(&mut StrategyBook)>;
        let cases: Vec<(Breaks, &str)> = vec![
            (Box::new(|b| b.default = "nope".into()), "default"),
            (
                Box::new(|b| b.segments[1].strategy = "nope".into()),
                "segments[1].strategy",
            ),
            (
                Box::new(|b| b.segments[0].buckets[0] = "90+".into()),
                "segments[0].buckets[0]",
            ),
            (
                Box::new(|b| b.strategies[1].id = "soft".into()),
                "strategies[1].id",
            ),
            (
                Box::new(|b| b.strategies[0].steps.clear()),
                "strategies[0].steps",
            ),
            (
                Box::new(|b| b.strategies[0].steps[1].day = -3),
                "strategies[0].steps[1].day",
            ),
            (
                Box::new(|b| {
                    b.strategies[0].steps[0]
                        .channels
                        .push(ChannelKind::Whatsapp)
                }),
                "strategies[0].steps[0].channels[1]",
            ),
            (
                // The same template declared with the opt-out button on one step, not another.
                Box::new(|b| {
                    b.strategies[1].steps[0]
                        .templates
                        .insert(Language::Es, "aviso_previo_suave".into());
                    b.strategies[1].steps[0].opt_out_button = true;
                }),
                "strategies[1].steps[0].templates.es",
            ),
            (Box::new(|b| b.buckets[1].from = 20), "buckets[1]"),
            (
                Box::new(|b| b.segments[1].min_balance_minor = Some(20_000)),
                "segments[1].max_balance_minor",
            ),
        ];
        for (break_it, field) in cases {
            let mut b = book();
            break_it(&mut b);
            assert_eq!(b.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn the_decision_uses_the_step_channels_templates_and_end_action() {
        use crate::collect::{Decider, Verdict};
        use crate::domain::{Consent, Debtor, Phone, Tenant, TenantKind, Zone};
        let tenant = Tenant {
            id: TenantId::parse("t").unwrap(),
            name: "Acme".into(),
            country: "CL".into(),
            kind: TenantKind::Creditor,
            channels: vec![ChannelKind::Sms, ChannelKind::Whatsapp],
            whatsapp_enabled: false,
            sender_ids: Default::default(),
            policy: None,
            strategies: Some(book()),
            plan_rules: Default::default(),
            pay_page: None,
            chat: Default::default(),
        };
        let consent = |c| Consent {
            channel: c,
            granted: true,
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            source: "crm".into(),
        };
        let debtor = Debtor {
            tenant: tenant.id.clone(),
            id: DebtorId::parse("d").unwrap(),
            name: "Ana".into(),
            phone: Phone::parse("+56911112222").unwrap(),
            email: None,
            time_zone: Zone::parse("America/Santiago").unwrap(),
            language: Language::Es,
            consents: vec![consent(ChannelKind::Sms), consent(ChannelKind::Whatsapp)],
            preferences: Default::default(),
            holds: Default::default(),
        };
        let mut a = account(50_000, None, &[]);
        a.due_date = date(2026, 3, 19);
        // Monday 2026-03-16, 12:00 in Santiago: the soft strategy's -3 step, WhatsApp only,
        // with its own template, though the tenant prefers SMS.
        let now = "2026-03-16T15:00:00Z".parse().unwrap();
        let Verdict::Contact(c) = Decider::default().decide(&tenant, &a, &debtor, &[], now) else {
            panic!("a contact")
        };
        assert_eq!((c.step, c.channel), (-3, ChannelKind::Whatsapp));
        assert_eq!(c.template, "aviso_previo_suave");
        assert!(c.reason.contains("soft strategy"), "{}", c.reason);
        // 60 days late: the late strategy's last step, then a handoff.
        a.due_date = date(2026, 1, 15);
        let Verdict::Contact(c) = Decider::default().decide(&tenant, &a, &debtor, &[], now) else {
            panic!("a contact")
        };
        assert_eq!(c.step, 60);
        assert_eq!(c.next_action_at, None);
        assert!(c.reason.contains("then handoff"), "{}", c.reason);
        // Thirty seconds before Chile's window opens (08:00): deferred to 08:00, not sent early.
        let early = "2026-03-16T10:59:30Z".parse().unwrap();
        let verdict = Decider::default().decide(&tenant, &a, &debtor, &[], early);
        let Verdict::Defer { until, .. } = verdict else {
            panic!("deferred: {verdict:?}")
        };
        assert_eq!(until, "2026-03-16T11:00:00Z".parse().unwrap());
    }

    #[test]
    fn a_tenant_template_without_the_opt_out_button_goes_only_where_no_law_requires_one() {
        use crate::collect::{Decider, Verdict};
        use crate::domain::{Consent, Debtor, Phone, Tenant, TenantKind, Zone};
        let tenant = |country: &str, b: StrategyBook| Tenant {
            id: TenantId::parse("t").unwrap(),
            name: "Acme".into(),
            country: country.into(),
            kind: TenantKind::Creditor,
            channels: vec![ChannelKind::Whatsapp],
            whatsapp_enabled: true,
            sender_ids: Default::default(),
            policy: None,
            strategies: Some(b),
            plan_rules: Default::default(),
            pay_page: None,
            chat: Default::default(),
        };
        let debtor = |phone: &str, zone: &str| Debtor {
            tenant: TenantId::parse("t").unwrap(),
            id: DebtorId::parse("d").unwrap(),
            name: "Ana".into(),
            phone: Phone::parse(phone).unwrap(),
            email: None,
            time_zone: Zone::parse(zone).unwrap(),
            language: Language::Es,
            consents: vec![Consent {
                channel: ChannelKind::Whatsapp,
                granted: true,
                at: "2026-01-01T00:00:00Z".parse().unwrap(),
                source: "crm".into(),
            }],
            preferences: Default::default(),
            holds: Default::default(),
        };
        let mut a = account(50_000, None, &[]);
        a.due_date = date(2026, 3, 19);
        // Monday 2026-03-16 at 17:00 UTC: 14:00 in Santiago, 13:00 in New York.
        let now = "2026-03-16T17:00:00Z".parse().unwrap();
        let decide = |b: &StrategyBook, country: &str, d: &Debtor| match Decider::default().decide(
            &tenant(country, b.clone()),
            &a,
            d,
            &[],
            now,
        ) {
            Verdict::Contact(c) => c,
            other => panic!("a contact: {other:?}"),
        };
        let chile = debtor("+56911112222", "America/Santiago");
        let us = debtor("+12125550100", "America/New_York");
        let mut b = book();
        // Chile asks no opt-out in every message: the tenant's own template, no button sent.
        let c = decide(&b, "CL", &chile);
        assert_eq!(
            (c.template.as_str(), c.opt_out_button),
            ("aviso_previo_suave", false)
        );
        // The US does (Reg F §1006.6(e)): the built-in template, which has it, and why.
        let c = decide(&b, "US", &us);
        assert_eq!(
            (c.template.as_str(), c.opt_out_button),
            ("payment_reminder_before_due", true)
        );
        assert!(
            c.reason.contains("instead of aviso_previo_suave"),
            "{}",
            c.reason
        );
        // Declared with the button: the tenant's own template everywhere, with its payload.
        b.strategies[0].steps[0].opt_out_button = true;
        for (country, d) in [("CL", &chile), ("US", &us)] {
            let c = decide(&b, country, d);
            assert_eq!(
                (c.template.as_str(), c.opt_out_button),
                ("aviso_previo_suave", true)
            );
        }
    }
}
