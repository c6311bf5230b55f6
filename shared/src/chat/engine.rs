//! The conversation engine: one message in, the next state, the replies and the effects out.
//! A pure function of its inputs (no clock, no I/O), so every transition is a plain test.
//!
//! Order of concern, on every message: signs of vulnerability first (care before anything),
//! then a person's ownership of the conversation (the bot stays silent), then opt-outs, then
//! the law's holds and the tenant's rule for long-overdue debtors, then what the bot was
//! waiting for, then what the debtor asks.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::dates;
use super::identity::IdentityFacts;
use super::intent::{self, ids, Intent};
use super::settings::{ChatSettings, IdentityCheck};
use super::state::{Awaiting, ChatState, Choice, Effect, Mode, Reply, Want};
use super::texts::say;
use super::vulnerability::{self, Sign};
use crate::compliance::{jurisdiction_of_phone, Range};
use crate::domain::{Account, AccountStatus, ChannelKind, Debtor, Language, Money, Tenant};
use crate::inbound::Content;
use crate::plans::{build, Frequency, PlanRequest};

/// Everything the engine reads for one message.
pub struct Turn<'a> {
    pub tenant: &'a Tenant,
    pub debtor: &'a Debtor,
    /// The debtor's accounts with this tenant, any state.
    pub accounts: &'a [Account],
    pub identity: Option<&'a IdentityFacts>,
    /// The channel the message came on.
    pub channel: ChannelKind,
    pub content: &'a Content,
    pub now: Timestamp,
    /// Today in the debtor's zone.
    pub today: Date,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: ChatState,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
    /// What the bot understood, for the record ("balance", "vulnerability:illness" …).
    pub understood: String,
}

struct Ctx<'a> {
    turn: &'a Turn<'a>,
    settings: &'a ChatSettings,
    lang: Language,
    state: ChatState,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
    understood: String,
}

/// One message through the engine.
pub fn step(state: &ChatState, turn: &Turn<'_>) -> Step {
    run_with(state, turn, |cx| cx.run())
}

/// One message handed to a person at once, for `reason` (the handoff text, unless the tenant
/// switched the bot off).
pub(super) fn hand_off(state: &ChatState, turn: &Turn<'_>, reason: &str) -> Step {
    run_with(state, turn, |cx| {
        cx.handoff(reason, false);
        if !cx.settings.enabled {
            cx.replies.clear();
        }
    })
}

/// The conversation's state and language for this message, then `run` over them.
fn run_with(state: &ChatState, turn: &Turn<'_>, run: impl FnOnce(&mut Ctx<'_>)) -> Step {
    let settings = &turn.tenant.chat;
    let mut state = state.clone();
    if turn.content.text().is_some_and(|t| !t.trim().is_empty()) {
        // The debtor wrote (or tapped): content the bot cannot read is worth a word again.
        state.told_text_only = false;
    }
    if let Some(text) = turn.content.text() {
        if let Some(lang) = intent::detect_language(text) {
            if lang != turn.debtor.language || state.language.is_some() {
                state.language = Some(lang);
            }
        }
    }
    let lang = state.language.unwrap_or(turn.debtor.language);
    let mut cx = Ctx {
        turn,
        settings,
        lang,
        state,
        replies: Vec::new(),
        effects: Vec::new(),
        understood: String::new(),
    };
    run(&mut cx);
    Step {
        state: cx.state,
        replies: cx.replies,
        effects: cx.effects,
        understood: cx.understood,
    }
}

impl Ctx<'_> {
    fn say(&self, key: &str, args: &[(&str, &str)]) -> String {
        say(self.settings, key, self.lang, args)
    }

    fn text(&mut self, key: &str, args: &[(&str, &str)]) {
        let body = self.say(key, args);
        self.replies.push(Reply::text(body));
    }

    fn choices(&mut self, body: String, button_key: &str, options: Vec<Choice>) {
        self.state.offered = options.iter().map(|o| o.id.clone()).collect();
        let button = self.say(button_key, &[]);
        self.replies.push(Reply::Choices {
            body,
            button,
            options,
        });
    }

    fn option(&self, id: &str, key: &str) -> Choice {
        Choice {
            id: id.to_string(),
            title: self.say(key, &[]),
            description: None,
        }
    }

    /// Every account that still owes something: open, or paused by the CRM. A settled or
    /// closed one (written off, sold) is nothing the debtor owes here.
    fn owed_accounts(&self) -> Vec<&Account> {
        self.turn
            .accounts
            .iter()
            .filter(|a| {
                matches!(a.status, AccountStatus::Open | AccountStatus::Paused)
                    && a.balance_minor > 0
            })
            .collect()
    }

    /// A lawsuit served or an insolvency, on the account or on the person: collection stops by
    /// law and nothing about the debt comes from a machine.
    fn legal_hold(&self, a: &Account) -> bool {
        let d = &self.turn.debtor.holds;
        a.holds.lawsuit_served || a.holds.insolvency || d.lawsuit_served || d.insolvency
    }

    /// Collection stopped until a person resolves it: a legal hold or an open dispute.
    fn stopped(&self, a: &Account) -> bool {
        self.legal_hold(a) || a.holds.dispute_open || self.turn.debtor.holds.dispute_open
    }

    /// Paused: by the CRM (status or hold), or a pause on the person (one the debtor asked
    /// for, a breathing space, a moratorium).
    fn paused(&self, a: &Account) -> bool {
        let now = self.turn.now;
        a.status == AccountStatus::Paused
            || a.holds.pause_at(now).is_some()
            || self.turn.debtor.holds.pause_at(now).is_some()
    }

    /// The accounts the bot may offer to pay, to plan or to promise on: owed and under no
    /// hold. A held account is shown in the balance, never collected on.
    fn open_accounts(&self) -> Vec<&Account> {
        self.owed_accounts()
            .into_iter()
            .filter(|a| !self.stopped(a) && !self.paused(a))
            .collect()
    }

    /// The accounts a request may be about: the balance shows every owed one, a dispute may be
    /// opened on any not already stopped, the rest only on the open ones.
    fn accounts_for(&self, want: Want) -> Vec<&Account> {
        match want {
            Want::Balance => self.owed_accounts(),
            Want::Dispute => self
                .owed_accounts()
                .into_iter()
                .filter(|a| !self.stopped(a))
                .collect(),
            Want::Pay | Want::Plans | Want::Promise => self.open_accounts(),
        }
    }

    fn run(&mut self) {
        let text = self.turn.content.text().map(str::to_string);
        if let Some(sign) = text.as_deref().and_then(vulnerability::detect) {
            return self.vulnerable(sign);
        }
        let intent = intent::read(self.turn.content, &self.state.offered);
        // A person owns the conversation: the bot is silent, except to confirm an opt-out or
        // opt-in the inbound has recorded, which the debtor must not be left wondering about.
        let consent_word = matches!(intent, Intent::OptOut | Intent::OptOutAll | Intent::OptIn);
        if matches!(self.state.mode, Mode::Agent { .. }) && !consent_word {
            self.understood = "silent:agent_owns".into();
            return;
        }
        if !self.settings.enabled {
            self.understood = "silent:bot_disabled".into();
            return;
        }
        match intent {
            Intent::Aside => return self.aside(),
            Intent::Wordless => return self.wordless(),
            Intent::OptOut => {
                self.understood = "opt_out".into();
                self.state.awaiting = Awaiting::Nothing;
                let channel = channel_name(self.turn.channel);
                return self.text("opted_out", &[("channel", channel)]);
            }
            Intent::OptOutAll => {
                // Recorded on every channel (the consent side reads the same words): said so.
                self.understood = "opt_out".into();
                self.state.awaiting = Awaiting::Nothing;
                return self.text("opted_out_all", &[]);
            }
            Intent::OptIn => {
                self.understood = "opt_in".into();
                let channel = channel_name(self.turn.channel);
                return self.text("opted_in", &[("channel", channel)]);
            }
            _ => {}
        }
        let denies = text
            .as_deref()
            .is_some_and(|t| intent::denies_being(t, &self.turn.debtor.name));
        if intent == Intent::WrongNumber || denies {
            return self.wrong_number();
        }
        let owed = self.owed_accounts();
        // Every debt stopped (a lawsuit, an insolvency, a dispute): nothing about it from a
        // machine, a person answers. A receipt is still taken: a dispute asks for one.
        if !owed.is_empty() && owed.iter().all(|a| self.stopped(a)) && intent != Intent::Receipt {
            let reason = if owed.iter().all(|a| self.legal_hold(a)) {
                "legal_hold"
            } else {
                "dispute_open"
            };
            return self.handoff(reason, false);
        }
        let open = self.open_accounts();
        if let Some(days) = self.settings.handoff_days_past_due {
            if open
                .iter()
                .any(|a| a.days_past_due(self.turn.today) >= i64::from(days))
                && intent != Intent::Receipt
            {
                return self.handoff("days_past_due", false);
            }
        }
        if self.answer(&intent) {
            return;
        }
        self.ask(intent);
    }

    /// A reaction, or a message the provider could not pass on: nothing was said to the bot, so
    /// it answers nothing and what it was waiting for still stands.
    fn aside(&mut self) {
        let what = match self.turn.content {
            Content::Reaction { .. } => "reaction",
            _ => "unsupported",
        };
        self.understood = format!("silent:{what}");
    }

    /// Content the bot cannot read (a sticker, a voice note, a place): said once until the
    /// debtor writes again. It is no answer and no misunderstanding: the question pending stays,
    /// no identity attempt is spent, nothing counts toward a handoff.
    fn wordless(&mut self) {
        if self.state.told_text_only {
            self.understood = "silent:wordless_again".into();
            return;
        }
        self.understood = "wordless".into();
        self.state.told_text_only = true;
        self.text("text_only", &[]);
    }

    fn vulnerable(&mut self, sign: Sign) {
        self.understood = format!("vulnerability:{}", sign.as_str());
        let newer = self.state.vulnerable.is_none_or(|seen| sign < seen);
        if newer {
            self.state.vulnerable = Some(sign);
            self.effects.push(Effect::Vulnerable { sign });
            let accounts = self.turn.accounts.iter().map(|a| a.id.clone()).collect();
            self.effects.push(Effect::Pause {
                accounts,
                until: None,
                reason: format!("vulnerability: {}", sign.as_str()),
            });
        }
        let agent_owns = matches!(self.state.mode, Mode::Agent { .. });
        // A person who owns the conversation answers, except that a crisis line is never held
        // back: safety outranks the bot's silence.
        if agent_owns && sign != Sign::SelfHarm {
            return;
        }
        let body = match sign {
            Sign::SelfHarm => match self.crisis_line() {
                Some(line) => self.say(
                    "care_self_harm",
                    &[("line", &line.name), ("phone", &line.phone)],
                ),
                None => self.say("care_self_harm_no_line", &[]),
            },
            Sign::MentalHealth => self.say("care_mental_health", &[]),
            Sign::Bereavement => self.say("care_bereavement", &[]),
            Sign::Illness => self.say("care_illness", &[]),
            Sign::Unemployment => self.say("care_unemployment", &[]),
        };
        self.replies.push(Reply::text(body));
        if !agent_owns {
            self.state.mode = Mode::Agent {
                since: self.turn.now,
                reason: format!("vulnerability: {}", sign.as_str()),
            };
            self.state.awaiting = Awaiting::Nothing;
            self.state.offered.clear();
            self.effects.push(Effect::Handoff {
                reason: format!("vulnerability: {}", sign.as_str()),
                urgent: sign == Sign::SelfHarm,
            });
        } else if newer {
            self.effects.push(Effect::Handoff {
                reason: format!("vulnerability: {}", sign.as_str()),
                urgent: true,
            });
        }
    }

    /// Whoever writes says they are not the debtor. Not a word about anyone or any debt: an
    /// apology, reminders paused on every account until a person has looked (each one would
    /// tell a stranger about the debt), and the conversation to a person, the bot silent.
    fn wrong_number(&mut self) {
        let accounts = self.turn.accounts.iter().map(|a| a.id.clone()).collect();
        self.effects.push(Effect::Pause {
            accounts,
            until: None,
            reason: "wrong number reported".into(),
        });
        self.handoff("wrong_number", false);
        // One message: the apology says what happens, the handoff notice would name a team
        // that has nothing to tell this person.
        self.replies.clear();
        self.text("wrong_number", &[]);
    }

    /// The line of the debtor's country (by phone), else the tenant's; the tenant's own first.
    fn crisis_line(&self) -> Option<vulnerability::CrisisLine> {
        if let Some(own) = &self.settings.crisis_line {
            return Some(own.clone());
        }
        let by_phone = jurisdiction_of_phone(self.turn.debtor.phone.as_str())
            .map(|j| j.split('-').next().unwrap_or(j).to_string());
        by_phone
            .and_then(|c| vulnerability::crisis_line(&c))
            .or_else(|| vulnerability::crisis_line(&self.turn.tenant.country))
    }

    fn handoff(&mut self, reason: &str, urgent: bool) {
        self.understood = format!("handoff:{reason}");
        self.state.mode = Mode::Agent {
            since: self.turn.now,
            reason: reason.to_string(),
        };
        self.state.awaiting = Awaiting::Nothing;
        self.state.offered.clear();
        self.effects.push(Effect::Handoff {
            reason: reason.to_string(),
            urgent,
        });
        self.text("handoff", &[]);
    }

    /// The debtor answers what the bot asked. `false`: not an answer (they changed the
    /// subject), so the message is read as a new request.
    fn answer(&mut self, intent: &Intent) -> bool {
        let awaiting = std::mem::take(&mut self.state.awaiting);
        let raw = match self.turn.content {
            Content::Text { body } => body.clone(),
            Content::Choice { title, .. } => title.clone(),
            _ => String::new(),
        };
        let choice = match intent {
            Intent::Choice(id) => Some(id.as_str()),
            _ => None,
        };
        match awaiting {
            Awaiting::Nothing => false,
            Awaiting::Identity { then } => {
                if matches!(intent, Intent::Human | Intent::Menu | Intent::Pause) {
                    return false;
                }
                if raw.trim().is_empty() {
                    // No words (a receipt photo): not an attempt. It is read as itself, and
                    // the question still waits for its answer.
                    self.state.awaiting = Awaiting::Identity { then };
                    return false;
                }
                self.check_identity(&raw, then);
                true
            }
            Awaiting::Account { then } => match choice.and_then(|c| c.strip_prefix("acct:")) {
                Some(id) => {
                    let found = self
                        .accounts_for(then)
                        .into_iter()
                        .find(|a| a.id.as_str() == id)
                        .cloned();
                    match found {
                        Some(account) => self.want_for(then, &account),
                        None => self.menu(),
                    }
                    true
                }
                None => false,
            },
            Awaiting::Plan { account, offers } => {
                let row = choice
                    .and_then(|c| c.strip_prefix("plan:"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n < offers.len());
                let Some(acct) = self.account(&account) else {
                    if row.is_some() {
                        self.menu();
                        return true;
                    }
                    return false;
                };
                let index = match self.typed_plan(&offers, row) {
                    Some(Ok(index)) => Some(index),
                    Some(Err(both)) => {
                        // "3" is the third row (12 cuotas) and also 3 cuotas: asked, not guessed.
                        self.understood = "plan_which".into();
                        let options = both
                            .iter()
                            .filter_map(|i| {
                                let req = &offers[*i];
                                let basis = acct.plan_basis();
                                let rules = &self.turn.tenant.plan_rules;
                                let terms = build(basis, rules, req, self.turn.today).ok()?;
                                let sum = Summary::of(&terms, self.lang);
                                Some(self.plan_option(*i, req.instalments, &sum))
                            })
                            .collect();
                        let body = self.say("plan_which", &[]);
                        self.choices(body, "plans_button", options);
                        self.state.awaiting = Awaiting::Plan { account, offers };
                        return true;
                    }
                    None => row,
                };
                let Some(request) = index.and_then(|i| offers.get(i).cloned()) else {
                    return false;
                };
                match build(
                    acct.plan_basis(),
                    &self.turn.tenant.plan_rules,
                    &request,
                    self.turn.today,
                ) {
                    Ok(terms) => {
                        self.understood = "plan_accepted".into();
                        let sum = Summary::of(&terms, self.lang);
                        let n = request.instalments.to_string();
                        let mut args = sum.args();
                        args.push(("n", &n));
                        let key = if sum.down.is_some() {
                            "plan_accepted_down"
                        } else {
                            "plan_accepted"
                        };
                        let mut body = self.say(key, &args);
                        if sum.interest.is_some() {
                            body.push(' ');
                            body.push_str(&self.say("plan_total", &args));
                        }
                        self.effects.push(Effect::AcceptPlan {
                            account: acct.id.clone(),
                            request,
                        });
                        self.replies.push(Reply::text(body));
                    }
                    Err(_) => {
                        // The offer went stale (a payment changed the balance): offer again.
                        self.plans_for(&acct);
                    }
                }
                true
            }
            Awaiting::PromiseDate { account } => {
                let Some(acct) = self.account(&account) else {
                    return false;
                };
                let limit = self.promise_limit();
                match dates::parse(&raw, self.turn.today, self.lang) {
                    Some(by) if by >= self.turn.today && by <= limit => {
                        self.understood = "promise_made".into();
                        let (_, amount_minor) = acct.reminder_target(self.turn.today);
                        let amount_minor = if amount_minor > 0 {
                            amount_minor
                        } else {
                            acct.balance_minor
                        };
                        let amount = Money::new(amount_minor, acct.currency).display();
                        let date = dates::show(by, self.lang);
                        self.effects.push(Effect::Promise {
                            account: acct.id.clone(),
                            by,
                            amount_minor,
                        });
                        self.text("promise_made", &[("amount", &amount), ("date", &date)]);
                        true
                    }
                    Some(_) => {
                        self.bad_date(&account);
                        true
                    }
                    None if matches!(intent, Intent::Other(_)) => {
                        self.bad_date(&account);
                        true
                    }
                    None => false,
                }
            }
            Awaiting::PauseReason => {
                let reason = match choice.and_then(|c| c.strip_prefix("pause:")) {
                    Some(r) => r.to_string(),
                    None if matches!(intent, Intent::Other(_)) => "other".into(),
                    None => return false,
                };
                self.pause(&reason);
                true
            }
            Awaiting::DisputeKind { account } => {
                let kind = match choice.and_then(|c| c.strip_prefix("dispute:")) {
                    Some(k) => k.to_string(),
                    None if matches!(intent, Intent::Dispute | Intent::Other(_)) => "other".into(),
                    None => return false,
                };
                self.understood = format!("dispute:{kind}");
                let label = account.as_str().to_string();
                self.effects.push(Effect::Dispute {
                    account,
                    kind: kind.clone(),
                });
                self.text("dispute_done", &[("account", &label)]);
                if kind == "paid" {
                    self.text("dispute_send_receipt", &[]);
                }
                true
            }
            Awaiting::Preference => false,
            Awaiting::Channel => {
                let picked = choice
                    .and_then(|c| c.strip_prefix("channel:"))
                    .map(str::to_string)
                    .or_else(|| channel_in_text(&raw));
                let Some(picked) = picked else {
                    return false;
                };
                self.prefer_channel(&picked);
                true
            }
            Awaiting::Hours => {
                let range = match choice.and_then(|c| c.strip_prefix("hours:")) {
                    Some("morning") => Range::hours(9, 12),
                    Some("afternoon") => Range::hours(12, 18),
                    Some("evening") => Range::hours(18, 21),
                    _ => return false,
                };
                self.understood = "hours".into();
                self.effects
                    .push(Effect::PreferHours { hours: Some(range) });
                let from = format!("{:02}:{:02}", range.start / 60, range.start % 60);
                let to = format!("{:02}:{:02}", range.end / 60, range.end % 60);
                self.text("hours_done", &[("from", &from), ("to", &to)]);
                true
            }
        }
    }

    fn account(&self, id: &crate::domain::AccountId) -> Option<Account> {
        self.open_accounts()
            .into_iter()
            .find(|a| &a.id == id)
            .cloned()
    }

    fn promise_limit(&self) -> Date {
        let days = i64::from(self.turn.tenant.plan_rules.max_promise_days);
        self.turn
            .today
            .checked_add(days.days())
            .unwrap_or(self.turn.today)
    }

    fn bad_date(&mut self, account: &crate::domain::AccountId) {
        self.understood = "promise_bad_date".into();
        let limit = self.promise_limit();
        let example = self
            .turn
            .today
            .checked_add(3.days())
            .unwrap_or(self.turn.today);
        let (l, e) = (
            dates::show(limit, self.lang),
            dates::example(example, self.lang),
        );
        self.text("promise_bad_date", &[("limit", &l), ("example", &e)]);
        self.state.awaiting = Awaiting::PromiseDate {
            account: account.clone(),
        };
    }

    /// What the debtor asks for, with no question pending.
    fn ask(&mut self, intent: Intent) {
        if !matches!(intent, Intent::Other(_)) {
            self.state.misunderstood = 0;
        }
        match intent {
            Intent::Balance => self.needs_identity(Want::Balance),
            Intent::Pay => self.needs_identity(Want::Pay),
            Intent::Plans => self.needs_identity(Want::Plans),
            Intent::Promise => self.needs_identity(Want::Promise),
            Intent::Dispute => self.needs_identity(Want::Dispute),
            Intent::Pause => {
                self.understood = "pause".into();
                let body = self.say("pause_ask", &[]);
                let options = vec![
                    self.option("pause:income", "pause_income"),
                    self.option("pause:health", "pause_health"),
                    self.option("pause:other", "pause_other"),
                ];
                self.choices(body, "menu_button", options);
                self.state.awaiting = Awaiting::PauseReason;
            }
            Intent::Preferences => {
                self.understood = "preferences".into();
                let body = self.say("prefs_ask", &[]);
                let options = vec![
                    self.option(ids::CHANNEL, "prefs_channel"),
                    self.option(ids::HOURS, "prefs_hours"),
                ];
                self.choices(body, "menu_button", options);
                self.state.awaiting = Awaiting::Preference;
            }
            Intent::Channel => {
                if let Some(c) = self.turn.content.text().and_then(channel_in_text) {
                    return self.prefer_channel(&c);
                }
                self.understood = "channel".into();
                let body = self.say("channel_ask", &[]);
                let options = [ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email]
                    .into_iter()
                    .map(|c| Choice {
                        id: format!("channel:{}", c.as_str()),
                        title: channel_name(c).to_string(),
                        description: None,
                    })
                    .collect();
                self.choices(body, "menu_button", options);
                self.state.awaiting = Awaiting::Channel;
            }
            Intent::Hours => {
                self.understood = "hours".into();
                let body = self.say("hours_ask", &[]);
                let options = vec![
                    self.option("hours:morning", "hours_morning"),
                    self.option("hours:afternoon", "hours_afternoon"),
                    self.option("hours:evening", "hours_evening"),
                ];
                self.choices(body, "menu_button", options);
                self.state.awaiting = Awaiting::Hours;
            }
            Intent::Human => self.handoff("asked", false),
            // `run` answers it before anything else; the same answer should it get here.
            Intent::WrongNumber => self.wrong_number(),
            // A plan or a pause means nothing when no debt is open to collect.
            Intent::CannotPay if self.open_accounts().is_empty() => self.menu(),
            Intent::CannotPay => {
                self.understood = "cannot_pay".into();
                let body = self.say("cannot_pay", &[]);
                let options = vec![
                    self.option(ids::PLANS, "opt_plans"),
                    self.option(ids::PAUSE, "opt_pause"),
                    self.option(ids::HUMAN, "opt_human"),
                ];
                self.choices(body, "menu_button", options);
            }
            Intent::Receipt => {
                self.understood = "receipt".into();
                self.effects.push(Effect::Receipt);
                self.text("receipt_ack", &[]);
            }
            Intent::Other(_) => {
                self.state.misunderstood += 1;
                self.understood = "not_understood".into();
                if self.state.misunderstood >= 3 {
                    return self.handoff("not_understood", false);
                }
                self.text("not_understood", &[]);
                self.menu_choices();
            }
            // `run` answers these before anything else; the same answer should they get here.
            Intent::Aside => self.aside(),
            Intent::Wordless => self.wordless(),
            Intent::Menu
            | Intent::Yes
            | Intent::No
            | Intent::Choice(_)
            | Intent::OptIn
            | Intent::OptOut
            | Intent::OptOutAll => self.menu(),
        }
    }

    fn menu(&mut self) {
        self.understood = "menu".into();
        self.menu_choices();
    }

    fn menu_choices(&mut self) {
        let first = self
            .turn
            .debtor
            .name
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        // Before the identity check, whoever holds the phone may not be the debtor: no name.
        let body = if self.verified() {
            self.say("menu", &[("name", &first)])
        } else {
            self.say("menu_anon", &[])
        };
        let mut options = vec![self.option(ids::BALANCE, "opt_balance")];
        // Paying, a plan, a promise or a pause only mean something while a debt is open: a
        // debtor whose accounts are all settled is not offered them.
        if !self.open_accounts().is_empty() {
            options.extend([
                self.option(ids::PAY, "opt_pay"),
                self.option(ids::PLANS, "opt_plans"),
                self.option(ids::PROMISE, "opt_promise"),
                self.option(ids::PAUSE, "opt_pause"),
            ]);
        }
        options.extend([
            self.option(ids::DISPUTE, "opt_dispute"),
            self.option(ids::PREFS, "opt_prefs"),
            self.option(ids::HUMAN, "opt_human"),
        ]);
        self.choices(body, "menu_button", options);
    }

    fn verified(&self) -> bool {
        self.settings.identity == IdentityCheck::PhoneOnly
            || self.state.verified_until.is_some_and(|u| u > self.turn.now)
    }

    fn needs_identity(&mut self, want: Want) {
        if self.verified() {
            return self.with_account(want);
        }
        if let Some(until) = self.state.locked_until.filter(|u| *u > self.turn.now) {
            self.understood = "identity_locked".into();
            let minutes = until
                .duration_since(self.turn.now)
                .as_mins()
                .max(1)
                .to_string();
            return self.text("identity_locked", &[("minutes", &minutes)]);
        }
        let on_record = self
            .turn
            .identity
            .is_some_and(|f| match self.settings.identity {
                IdentityCheck::NationalIdLast4 => f.national_id_last4.is_some(),
                IdentityCheck::BirthDate => f.birth_date.is_some(),
                IdentityCheck::PhoneOnly => true,
            });
        if !on_record {
            self.text("identity_unavailable", &[]);
            let handoff_text = self.replies.len();
            self.handoff("identity_unavailable", false);
            // One message is enough: the handoff notice repeats what was just said.
            self.replies.truncate(handoff_text);
            return;
        }
        self.understood = "identity_asked".into();
        let key = match self.settings.identity {
            IdentityCheck::BirthDate => "identity_ask_dob",
            _ => "identity_ask_id4",
        };
        self.text(key, &[]);
        self.state.offered.clear();
        self.state.awaiting = Awaiting::Identity { then: want };
    }

    fn check_identity(&mut self, answer: &str, then: Want) {
        let facts = self.turn.identity.cloned().unwrap_or_default();
        let ok = facts.check(
            self.settings.identity,
            &self.turn.tenant.id,
            &self.turn.debtor.id,
            answer,
            self.lang,
        );
        if ok == Some(true) {
            self.state.failed_checks = 0;
            self.state.locked_until = None;
            self.state.verified_until = self
                .turn
                .now
                .checked_add(SignedDuration::from_hours(
                    24 * i64::from(self.settings.verified_days),
                ))
                .ok();
            self.effects.push(Effect::IdentityVerified);
            self.text("identity_ok", &[]);
            return self.with_account(then);
        }
        self.state.failed_checks += 1;
        let left = self
            .settings
            .identity_attempts
            .saturating_sub(self.state.failed_checks);
        if left == 0 {
            let until = self
                .turn
                .now
                .checked_add(SignedDuration::from_mins(i64::from(
                    self.settings.lock_minutes,
                )))
                .unwrap_or(self.turn.now);
            self.state.locked_until = Some(until);
            self.state.failed_checks = 0;
            self.understood = "identity_locked".into();
            self.effects.push(Effect::IdentityLocked { until });
            let minutes = self.settings.lock_minutes.to_string();
            return self.text("identity_locked", &[("minutes", &minutes)]);
        }
        self.understood = "identity_wrong".into();
        self.effects.push(Effect::IdentityFailed { left });
        self.text("identity_wrong", &[("left", &left.to_string())]);
        self.state.awaiting = Awaiting::Identity { then };
    }

    fn with_account(&mut self, want: Want) {
        if self.owed_accounts().is_empty() {
            self.understood = format!("{}:nothing_due", want_name(want));
            return self.text("nothing_due", &[]);
        }
        let open: Vec<Account> = self.accounts_for(want).into_iter().cloned().collect();
        if want == Want::Balance {
            return self.balance(&open);
        }
        if open.is_empty() {
            // Something is owed, but all of it is paused or under review: not to be collected
            // here. A person can still take a payment the debtor wants to make.
            self.understood = format!("{}:held", want_name(want));
            return self.text("held_nothing_to_offer", &[]);
        }
        if open.len() == 1 {
            return self.want_for(want, &open[0]);
        }
        self.understood = format!("{}:pick_account", want_name(want));
        let body = self.say("pick_account", &[]);
        let options = open
            .iter()
            .map(|a| Choice {
                id: format!("acct:{}", a.id),
                title: a
                    .product
                    .clone()
                    .unwrap_or_else(|| a.id.to_string())
                    .chars()
                    .take(24)
                    .collect(),
                description: Some(
                    format!("{} · {}", a.id, a.balance().display())
                        .chars()
                        .take(72)
                        .collect(),
                ),
            })
            .collect();
        self.choices(body, "accounts_button", options);
        self.state.awaiting = Awaiting::Account { then: want };
    }

    fn balance(&mut self, owed: &[Account]) {
        self.understood = "balance".into();
        let mut lines = Vec::new();
        for a in owed {
            let label = a.product.clone().unwrap_or_else(|| a.id.to_string());
            let balance = a.balance().display();
            let days = a.days_past_due(self.turn.today);
            if self.stopped(a) {
                // Under review by a person: no amounts, no dates, nothing to act on.
                lines.push(self.say("balance_review", &[("account", &label)]));
                continue;
            }
            if self.paused(a) {
                lines.push(self.say(
                    "balance_paused",
                    &[("account", &label), ("balance", &balance)],
                ));
                continue;
            }
            lines.push(if days > 0 {
                self.say(
                    "balance_overdue",
                    &[
                        ("account", &label),
                        ("balance", &balance),
                        ("days", &days.to_string()),
                    ],
                )
            } else {
                let (date, amount) = a.reminder_target(self.turn.today);
                let amount = Money::new(amount, a.currency).display();
                let date = dates::show(date, self.lang);
                self.say(
                    "balance_current",
                    &[
                        ("account", &label),
                        ("balance", &balance),
                        ("amount", &amount),
                        ("date", &date),
                    ],
                )
            });
            if let Some(p) = &a.promise {
                let left = Money::new((p.amount_minor - p.paid_minor).max(0), a.currency).display();
                let date = dates::show(p.by, self.lang);
                lines.push(self.say("balance_promise", &[("amount", &left), ("date", &date)]));
            } else if let Some(due) = a.plan_due(self.turn.today) {
                // What the reminders ask for: every instalment due today and overdue, or the
                // next one before any is.
                let amount = Money::new(due.amount_minor, a.currency).display();
                let date = dates::show(due.from, self.lang);
                let count = due.instalments.to_string();
                let key = if due.from > self.turn.today {
                    "balance_plan"
                } else if due.instalments == 1 {
                    "balance_plan_due_one"
                } else {
                    "balance_plan_due"
                };
                let args = [("count", &*count), ("amount", &amount), ("date", &date)];
                lines.push(self.say(key, &args));
            }
        }
        let options = if self.open_accounts().is_empty() {
            // Nothing to collect here: what is left is a word with a person.
            vec![self.option(ids::HUMAN, "opt_human")]
        } else {
            vec![
                self.option(ids::PAY, "opt_pay"),
                self.option(ids::PLANS, "opt_plans"),
                self.option(ids::PROMISE, "opt_promise"),
            ]
        };
        self.choices(lines.join("\n"), "menu_button", options);
    }

    fn want_for(&mut self, want: Want, account: &Account) {
        match want {
            Want::Balance => self.balance(std::slice::from_ref(account)),
            Want::Pay => {
                self.understood = "pay".into();
                self.effects.push(Effect::PayLink {
                    account: account.id.clone(),
                });
            }
            Want::Plans => self.plans_for(account),
            Want::Promise => {
                self.understood = "promise_asked".into();
                let (_, amount) = account.reminder_target(self.turn.today);
                let amount = Money::new(
                    if amount > 0 {
                        amount
                    } else {
                        account.balance_minor
                    },
                    account.currency,
                )
                .display();
                let limit = dates::show(self.promise_limit(), self.lang);
                let example = self
                    .turn
                    .today
                    .checked_add(3.days())
                    .unwrap_or(self.turn.today);
                let example = dates::example(example, self.lang);
                self.text(
                    "promise_ask",
                    &[
                        ("amount", &amount),
                        ("limit", &limit),
                        ("example", &example),
                    ],
                );
                self.state.offered.clear();
                self.state.awaiting = Awaiting::PromiseDate {
                    account: account.id.clone(),
                };
            }
            Want::Dispute => {
                self.understood = "dispute_asked".into();
                let body = self.say("dispute_ask", &[]);
                let options = vec![
                    self.option("dispute:not_mine", "dispute_not_mine"),
                    self.option("dispute:paid", "dispute_paid"),
                    self.option("dispute:amount", "dispute_amount"),
                ];
                self.choices(body, "menu_button", options);
                self.state.awaiting = Awaiting::DisputeKind {
                    account: account.id.clone(),
                };
            }
        }
    }

    /// Up to four plan offers the tenant's rules allow: 3, 6, 12 and the longest, monthly when
    /// offered, the first instalment a week out.
    fn plans_for(&mut self, account: &Account) {
        let rules = &self.turn.tenant.plan_rules;
        let frequency = if rules.frequencies.contains(&Frequency::Monthly) {
            Frequency::Monthly
        } else {
            match rules.frequencies.first() {
                Some(f) => *f,
                None => return self.no_plans(),
            }
        };
        let first_due = self
            .turn
            .today
            .checked_add(i64::from(rules.first_due_within_days.min(7)).days())
            .unwrap_or(self.turn.today);
        // Rounded up, so the down payment is never below the tenant's minimum, nor below the
        // least instalment (the builder refuses a smaller one).
        // Plans are built on the balance without a running plan's unearned interest.
        let basis = account.plan_basis();
        let down = match (basis.minor * i64::from(rules.min_down_payment_percent) + 99) / 100 {
            0 => 0,
            down => down.max(rules.min_instalment_minor),
        };
        let mut counts = vec![3, 6, 12, rules.max_instalments];
        counts.retain(|n| *n >= 2 && *n <= rules.max_instalments);
        counts.sort_unstable();
        counts.dedup();
        let mut offers = Vec::new();
        let mut options = Vec::new();
        // The down payment and the start date are the same in every offer: said once, above.
        let mut body_down: Option<Summary> = None;
        for n in counts {
            let request = PlanRequest {
                instalments: n,
                frequency,
                first_due,
                down_payment_minor: down,
                settlement_percent: None,
            };
            let Ok(terms) = build(basis, rules, &request, self.turn.today) else {
                continue;
            };
            let sum = Summary::of(&terms, self.lang);
            options.push(self.plan_option(offers.len(), n, &sum));
            if down > 0 {
                body_down = Some(sum);
            }
            offers.push(request);
        }
        if offers.is_empty() {
            return self.no_plans();
        }
        self.understood = "plans_offered".into();
        let balance = basis.display();
        let body = match body_down {
            Some(sum) => {
                let mut args = sum.args();
                args.push(("balance", &balance));
                self.say("plans_offer_down", &args)
            }
            None => self.say("plans_offer", &[("balance", &balance)]),
        };
        self.choices(body, "plans_button", options);
        self.state.awaiting = Awaiting::Plan {
            account: account.id.clone(),
            offers,
        };
    }

    /// One offer as a list row: "6 cuotas", and what is paid when.
    fn plan_option(&self, index: usize, instalments: u32, sum: &Summary) -> Choice {
        let key = match (sum.down.is_some(), sum.interest.is_some()) {
            (false, false) => "plan_row_detail",
            (true, false) => "plan_row_detail_down",
            (false, true) => "plan_row_detail_total",
            // The start date is in the body: the row has no room for it (72 letters).
            (true, true) => "plan_row_detail_down_total",
        };
        Choice {
            id: format!("plan:{index}"),
            title: self.say("plan_row", &[("n", &instalments.to_string())]),
            description: Some(self.say(key, &sum.args())),
        }
    }

    /// The offer a typed number means on a numbered list (SMS, e-mail), where "3" may be the
    /// third row or "3 cuotas". `Ok(index)` when only one reading fits; `Err` with both when
    /// they name different offers. `None`: not a typed number, or a button.
    fn typed_plan(
        &self,
        offers: &[PlanRequest],
        row: Option<usize>,
    ) -> Option<Result<usize, [usize; 2]>> {
        let Content::Text { body } = self.turn.content else {
            return None;
        };
        let n = super::text::normalize(body);
        let w = super::text::words(&n);
        const COUNT_WORDS: [&str; 8] = [
            "cuotas",
            "parcelas",
            "vezes",
            "meses",
            "instalments",
            "installments",
            "months",
            "payments",
        ];
        let (number, said_count) = match w.as_slice() {
            [x] => (x.parse::<u32>().ok()?, false),
            [x, unit] if COUNT_WORDS.contains(unit) => (x.parse::<u32>().ok()?, true),
            _ => return None,
        };
        let count = offers.iter().position(|o| o.instalments == number);
        match (row, count) {
            (_, Some(c)) if said_count => Some(Ok(c)),
            (Some(r), Some(c)) if r != c => Some(Err([r, c])),
            (None, Some(c)) => Some(Ok(c)),
            (Some(r), _) => Some(Ok(r)),
            (None, None) => None,
        }
    }

    fn no_plans(&mut self) {
        self.understood = "plans_none".into();
        self.text("plans_none", &[]);
    }

    fn pause(&mut self, reason: &str) {
        self.understood = format!("pause:{reason}");
        let until = self
            .turn
            .now
            .checked_add(SignedDuration::from_hours(
                24 * i64::from(self.settings.pause_days),
            ))
            .unwrap_or(self.turn.now);
        // Paused ones too: a pause never shortens one already holding.
        let accounts = self
            .owed_accounts()
            .into_iter()
            .filter(|a| !self.stopped(a))
            .map(|a| a.id.clone())
            .collect();
        self.effects.push(Effect::Pause {
            accounts,
            until: Some(until),
            reason: format!("debtor asked: {reason}"),
        });
        let day = self
            .turn
            .today
            .checked_add(i64::from(self.settings.pause_days).days())
            .unwrap_or(self.turn.today);
        let date = dates::show(day, self.lang);
        self.text("pause_done", &[("date", &date)]);
    }

    fn prefer_channel(&mut self, name: &str) {
        let channel = match name {
            "whatsapp" => ChannelKind::Whatsapp,
            "sms" => ChannelKind::Sms,
            "email" => ChannelKind::Email,
            _ => return self.menu(),
        };
        let usable = self.turn.tenant.usable_channels().any(|c| c == channel)
            && (channel != ChannelKind::Email || self.turn.debtor.email.is_some());
        if !usable {
            self.understood = "channel_unavailable".into();
            self.text("channel_unavailable", &[]);
            self.state.awaiting = Awaiting::Channel;
            return;
        }
        self.understood = format!("channel:{name}");
        self.effects.push(Effect::PreferChannel { channel });
        self.text("channel_done", &[("channel", channel_name(channel))]);
    }
}

/// A plan's terms as the debtor reads them: the down payment due today (instalment 0), the
/// regular instalment and when the first of them is due, and the total when interest makes it
/// more than the balance.
struct Summary {
    down: Option<String>,
    amount: String,
    date: String,
    total: String,
    interest: Option<String>,
}

impl Summary {
    fn of(terms: &crate::plans::PlanTerms, lang: Language) -> Self {
        let money = |minor| Money::new(minor, terms.currency).display();
        let down = terms
            .instalments
            .iter()
            .find(|i| i.number == 0 && i.amount_minor > 0)
            .map(|i| money(i.amount_minor));
        let regular = terms.instalments.iter().find(|i| i.number > 0);
        Self {
            down,
            amount: money(regular.map_or(0, |i| i.amount_minor)),
            date: regular.map_or(String::new(), |i| dates::show(i.due, lang)),
            total: money(terms.total_minor),
            interest: (terms.interest_minor > 0).then(|| money(terms.interest_minor)),
        }
    }

    /// The placeholders: down, amount, date, total, interest (a text uses those it has).
    fn args(&self) -> Vec<(&str, &str)> {
        vec![
            ("down", self.down.as_deref().unwrap_or("")),
            ("amount", &self.amount),
            ("date", &self.date),
            ("total", &self.total),
            ("interest", self.interest.as_deref().unwrap_or("")),
        ]
    }
}

fn want_name(w: Want) -> &'static str {
    match w {
        Want::Balance => "balance",
        Want::Pay => "pay",
        Want::Plans => "plans",
        Want::Promise => "promise",
        Want::Dispute => "dispute",
    }
}

fn channel_name(c: ChannelKind) -> &'static str {
    match c {
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Sms => "SMS",
        ChannelKind::Email => "e-mail",
    }
}

/// The channel a text names. A channel's own name wins over "mensaje" or "texto", which only
/// mean SMS when nothing else is named ("mándame un mensaje por WhatsApp" is WhatsApp).
fn channel_in_text(text: &str) -> Option<String> {
    let n = super::text::normalize(text);
    let w = super::text::words(&n);
    let any = |names: &[&str]| w.iter().any(|x| names.contains(x));
    if any(&["whatsapp", "wpp", "zap"]) {
        Some("whatsapp".into())
    } else if any(&["sms"]) {
        Some("sms".into())
    } else if any(&["email", "mail", "correo"]) {
        Some("email".into())
    } else if any(&["mensaje", "texto"]) {
        Some("sms".into())
    } else {
        None
    }
}
