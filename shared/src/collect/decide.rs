//! One decision for one account that is due: contact now (which step, which channel, what
//! text), wait, or stop, each with its reason.

use jiff::{SignedDuration, Timestamp};

use super::strategy::Strategy;
use super::templates::{has_opt_out_button, params, render, ReminderKind, ReminderVars};
use super::window::ContactWindow;
use crate::compliance::{evaluate, Decision, Facts, PastContact};
use crate::domain::{Account, ChannelKind, Debtor, Tenant};

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Contact(Contact),
    /// Not now: decide again at `until`.
    Defer {
        until: Timestamp,
        reason: String,
    },
    /// No more automated contact for this account (until something changes it).
    Stop {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub step: i32,
    pub decision_id: String,
    pub channel: ChannelKind,
    pub template: String,
    pub text: String,
    /// The template's body parameters, in order.
    pub params: Vec<String>,
    /// The template carries cobro's opt-out quick reply (see `templates::has_opt_out_button`).
    pub opt_out_button: bool,
    /// The amount and date the message states.
    pub states: crate::domain::Stated,
    /// When the account needs its next decision (the next step), if any.
    pub next_action_at: Option<Timestamp>,
    pub reason: String,
}

pub struct Decider {
    pub strategy: Strategy,
    /// What runs while a promise to pay stands: a reminder the day before.
    pub promise_strategy: Strategy,
    pub window: ContactWindow,
}

impl Default for Decider {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            promise_strategy: Strategy::on_days("promise", &[-1]),
            window: ContactWindow::default(),
        }
    }
}

impl Decider {
    /// When a freshly stored or changed account first needs a decision: now if a step's day
    /// has come, else the morning of its first step, in the debtor's zone. `None`: no
    /// reminders for it.
    pub fn first_action(
        &self,
        tenant: &Tenant,
        account: &Account,
        debtor: &Debtor,
        now: Timestamp,
    ) -> Option<Timestamp> {
        if !account.status.is_collectable() || account.balance_minor == 0 {
            return None;
        }
        let tz = debtor.time_zone.tz();
        let today = now.to_zoned(tz.clone()).date();
        let strategy = self.strategy_for(tenant, account, today);
        let (due, _) = account.reminder_target(today);
        if strategy.current_step(due, today).is_some() {
            return Some(now);
        }
        let (_, date) = strategy.step_after(due, None)?;
        self.step_time(date, &tz).map(|t| t.max(now))
    }

    /// The tenant's strategy for this account (its segments, by bucket, balance, product and
    /// tags), or the built-in one.
    pub fn strategy_for<'a>(
        &'a self,
        tenant: &'a Tenant,
        account: &Account,
        today: jiff::civil::Date,
    ) -> &'a Strategy {
        // While a promise stands, one reminder the day before it falls due, nothing else.
        if account.promise.is_some() {
            return &self.promise_strategy;
        }
        tenant
            .strategies
            .as_ref()
            .map_or(&self.strategy, |book| book.choose(account, today))
    }

    fn step_time(&self, date: jiff::civil::Date, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
        date.at(self.window.start_hour, 0, 0, 0)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    /// One account's decision now. The step comes from the strategy; whether, when and on
    /// which channel from the compliance engine, under the policy that applies to this tenant
    /// and this debtor (fail closed: no preset, no send).
    pub fn decide(
        &self,
        tenant: &Tenant,
        account: &Account,
        debtor: &Debtor,
        history: &[PastContact],
        now: Timestamp,
    ) -> Verdict {
        if !account.status.is_collectable() {
            return Verdict::Stop {
                reason: format!("account is {:?}, not open", account.status).to_lowercase(),
            };
        }
        if account.balance_minor == 0 {
            return Verdict::Stop {
                reason: "nothing is owed".into(),
            };
        }
        let tz = debtor.time_zone.tz();
        let local = now.to_zoned(tz.clone());
        let strategy = self.strategy_for(tenant, account, local.date());
        // While a plan runs, the steps follow its earliest unpaid instalment and ask for all
        // of those due.
        let (due_date, amount_minor) = account.reminder_target(local.date());
        let Some(step) = strategy.current_step(due_date, local.date()) else {
            return match self.first_action(tenant, account, debtor, now) {
                Some(until) => Verdict::Defer {
                    until,
                    reason: "no reminder step has come yet".into(),
                },
                None => Verdict::Stop {
                    reason: "the strategy has no steps".into(),
                },
            };
        };
        let policy = match crate::compliance::debtor_policy(tenant, debtor) {
            Ok(p) => p,
            // `[no_policy] …` or `[unknown_jurisdiction] …`: the tenant's or the debtor's.
            Err(none) => {
                return Verdict::Stop {
                    reason: none.to_string(),
                }
            }
        };
        // The step's own channel order, among those the tenant may use and the debtor has an
        // address on.
        let usable: Vec<ChannelKind> = tenant
            .usable_channels()
            .filter(|c| debtor.reachable_on(*c))
            .collect();
        let step_channels = strategy
            .step(step)
            .map(|s| s.channels.clone())
            .unwrap_or_default();
        let channels: Vec<ChannelKind> = if step_channels.is_empty() {
            usable
        } else {
            step_channels
                .into_iter()
                .filter(|c| usable.contains(c))
                .collect()
        };
        let channels = crate::compliance::preferred_first(channels, debtor);
        let holds = account.holds.with(&debtor.holds, now);
        let facts = Facts {
            debtor,
            holds: &holds,
            history,
            channels: &channels,
            now,
        };
        let (channel, opt_out_required) = match evaluate(&policy, &facts) {
            // The engine says `at == now` when contact is allowed now; a later `at`, however
            // close, is a window not yet open: deferred to it, never sent early.
            Decision::Contact {
                channel,
                at,
                opt_out_text,
                ..
            } if at <= now => (channel, opt_out_text),
            Decision::Contact {
                at,
                waited_for,
                policy,
                ..
            } => {
                let why = waited_for
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "not yet".into());
                return Verdict::Defer {
                    until: at,
                    reason: format!("{why} ({policy})"),
                };
            }
            Decision::Blocked {
                verdict,
                next_possible,
                policy,
            } => {
                let reason = format!("[{}] {} ({policy})", verdict.rule, verdict.reason);
                return match next_possible {
                    Some(until) => Verdict::Defer { until, reason },
                    // A stop by law ends automation until the CRM lifts it; a missing consent
                    // or an opt-out is looked at again daily, since the debtor may opt back in.
                    None if verdict.rule.starts_with("stop:") => Verdict::Stop { reason },
                    None => Verdict::Defer {
                        until: now + SignedDuration::from_hours(24),
                        reason,
                    },
                };
            }
        };
        let kind = ReminderKind::for_step(step);
        let amount = crate::domain::Money::new(amount_minor, account.currency).display();
        let due = due_date.to_string();
        let vars = ReminderVars {
            name: &debtor.name,
            creditor: account.creditor_name(tenant),
            amount: &amount,
            due_date: &due,
        };
        let text = render(kind, debtor.language, &vars);
        let params = params(kind, &vars);
        let own = strategy
            .step(step)
            .and_then(|s| Some((s, s.templates.get(&debtor.language)?)));
        let mut instead = String::new();
        let (template, opt_out_button) = match own {
            Some((s, name)) if has_opt_out_button(s, name) => (name.clone(), true),
            // Where every message must carry its way out (Reg F §1006.6(e)), a tenant's
            // template without the button gives way to the built-in one, which has it.
            Some((_, name)) if opt_out_required => {
                instead = format!(
                    "; the built-in template instead of {name}, which has no opt-out button the policy requires"
                );
                (kind.template().to_string(), true)
            }
            Some((_, name)) => (name.clone(), false),
            None => (kind.template().to_string(), true),
        };
        let next_action_at = strategy
            .step_after(due_date, Some(step))
            .and_then(|(_, date)| self.step_time(date, &tz))
            // Never sooner than a day after this contact.
            .map(|t| {
                t.max(
                    now.saturating_add(SignedDuration::from_hours(24))
                        .expect("in range"),
                )
            });
        // After a promise's day the account must be looked at again, to see it kept or broken.
        let next_action_at = match (&account.promise, next_action_at) {
            (Some(p), None) => {
                p.by.tomorrow()
                    .ok()
                    .and_then(|d| self.step_time(d, &tz))
                    .map(|t| t.max(now))
            }
            (_, next) => next,
        };
        let end = match next_action_at {
            None if strategy.end != super::strategy::EndAction::Stop => {
                format!("; the last step, then {}", strategy.end.as_str())
            }
            None => "; the last step".to_string(),
            Some(_) => String::new(),
        };
        Verdict::Contact(Contact {
            step,
            decision_id: Strategy::decision_id(due_date, step),
            channel,
            template,
            text,
            params,
            opt_out_button,
            states: crate::domain::Stated {
                due: due_date,
                amount_minor,
            },
            next_action_at,
            reason: format!(
                "step d{step:+} of the {} strategy on {}: every rule of the {} policy allows it now{end}{instead}",
                strategy.id,
                channel.as_str(),
                policy.id
            ),
        })
    }
}
