//! Every transition of the engine, driven message by message as a debtor would.

use jiff::civil::{date, Date};
use jiff::Timestamp;

use super::*;
use crate::domain::{
    Account, AccountId, AccountStatus, ChannelKind, Currency, Debtor, DebtorId, Language, Phone,
    Tenant, TenantId, TenantKind, Zone,
};
use crate::inbound::Content;

const TODAY: Date = date(2026, 11, 25);

fn now() -> Timestamp {
    "2026-11-25T15:00:00Z".parse().unwrap()
}

fn tenant() -> Tenant {
    Tenant {
        id: TenantId::parse("t").unwrap(),
        name: "Acme".into(),
        country: "CL".into(),
        kind: TenantKind::Creditor,
        channels: vec![ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email],
        whatsapp_enabled: false,
        sender_ids: Default::default(),
        policy: None,
        strategies: None,
        plan_rules: Default::default(),
        pay_page: None,
        chat: ChatSettings::default(),
    }
}

fn debtor(language: Language) -> Debtor {
    Debtor {
        tenant: TenantId::parse("t").unwrap(),
        id: DebtorId::parse("d").unwrap(),
        name: "Ana Pérez".into(),
        phone: Phone::parse("+56911112222").unwrap(),
        email: Some("ana@example.com".into()),
        time_zone: Zone::parse("America/Santiago").unwrap(),
        language,
        consents: vec![],
        preferences: Default::default(),
        holds: Default::default(),
    }
}

fn account(id: &str, balance: i64, due: Date) -> Account {
    Account {
        status: AccountStatus::Open,
        ..Account::new(
            TenantId::parse("t").unwrap(),
            AccountId::parse(id).unwrap(),
            DebtorId::parse("d").unwrap(),
            Currency::parse("CLP").unwrap(),
            balance,
            balance,
            due,
        )
    }
}

/// A conversation: the same tenant, debtor and accounts, one message after another.
struct Chat {
    tenant: Tenant,
    debtor: Debtor,
    accounts: Vec<Account>,
    identity: Option<IdentityFacts>,
    state: ChatState,
    at: Timestamp,
    channel: ChannelKind,
}

impl Chat {
    fn new(language: Language) -> Self {
        let tenant = tenant();
        let debtor = debtor(language);
        let identity = IdentityFacts::from_raw(
            &tenant.id,
            &debtor.id,
            Some("12.345.678-5"),
            Some(date(1990, 4, 7)),
        )
        .unwrap();
        Self {
            tenant,
            debtor,
            accounts: vec![account("L-1", 150_000, date(2026, 11, 10))],
            identity: Some(identity),
            state: ChatState::default(),
            at: now(),
            channel: ChannelKind::Whatsapp,
        }
    }

    fn send(&mut self, content: Content) -> Step {
        let turn = Turn {
            tenant: &self.tenant,
            debtor: &self.debtor,
            accounts: &self.accounts,
            identity: self.identity.as_ref(),
            channel: self.channel,
            content: &content,
            now: self.at,
            today: TODAY,
        };
        let s = step(&self.state, &turn);
        self.state = s.state.clone();
        self.at = self
            .at
            .checked_add(jiff::SignedDuration::from_secs(30))
            .unwrap();
        s
    }

    fn say(&mut self, text: &str) -> Step {
        self.send(Content::Text { body: text.into() })
    }

    fn tap(&mut self, id: &str) -> Step {
        self.send(Content::Choice {
            id: id.into(),
            title: id.into(),
        })
    }

    fn verified(&mut self) {
        self.say("saldo");
        let s = self.say("6785");
        assert!(s.effects.contains(&Effect::IdentityVerified), "{s:?}");
    }
}

fn all_text(s: &Step) -> String {
    s.replies
        .iter()
        .map(Reply::plain)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_greeting_gets_the_menu_and_a_number_picks_from_it() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("Hola");
    assert_eq!(s.understood, "menu");
    // Not verified yet: whoever holds the phone is not greeted by the debtor's name.
    assert!(all_text(&s).starts_with("Hola, ¿en qué te puedo ayudar?"));
    assert!(!all_text(&s).contains("Ana"));
    assert_eq!(chat.state.offered.len(), 8);
    // "1" is the first option: the balance, which asks who they are first.
    let s = chat.say("1");
    assert_eq!(s.understood, "identity_asked");
    chat.say("6785");
    let s = chat.say("hola");
    assert!(all_text(&s).starts_with("Hola Ana, ¿en qué te puedo ayudar?"));
    // A tenant that checks nothing but the phone: the name from the start.
    let mut chat = Chat::new(Language::Es);
    chat.tenant.chat.identity = IdentityCheck::PhoneOnly;
    assert!(all_text(&chat.say("Hola")).starts_with("Hola Ana,"));
}

/// Someone else has the number: they are told nothing about anyone or any debt, reminders
/// pause until a person looks, and the bot goes silent.
#[test]
fn a_wrong_number_is_told_nothing_and_reminders_pause() {
    for (text, lang, words) in [
        ("número equivocado", Language::Es, "Gracias por avisarnos"),
        ("No soy Ana", Language::Es, "Gracias por avisarnos"),
        (
            "You have the wrong number",
            Language::Es,
            "Thank you for letting us know",
        ),
        (
            "número errado, não sou a Ana",
            Language::Pt,
            "Obrigado por avisar",
        ),
        ("não sou Ana", Language::Pt, "Obrigado por avisar"),
    ] {
        let mut chat = Chat::new(lang);
        chat.accounts
            .push(account("L-2", 50_000, date(2026, 12, 10)));
        let s = chat.say(text);
        assert_eq!(s.understood, "handoff:wrong_number", "{text}");
        let reply = all_text(&s);
        assert!(reply.starts_with(words), "{text}: {reply}");
        for secret in [
            "Ana", "Pérez", "150000", "L-1", "deuda", "dívida", "debt", "Pagar",
        ] {
            assert!(!reply.contains(secret), "{text}: {secret} in {reply}");
        }
        assert_eq!(s.replies.len(), 1, "{s:?}");
        assert_eq!(
            s.effects,
            vec![
                Effect::Pause {
                    accounts: vec![
                        AccountId::parse("L-1").unwrap(),
                        AccountId::parse("L-2").unwrap()
                    ],
                    until: None,
                    reason: "wrong number reported".into()
                },
                Effect::Handoff {
                    reason: "wrong_number".into(),
                    urgent: false
                }
            ]
        );
        assert!(chat.state.offered.is_empty());
        assert!(chat.say("hola").replies.is_empty(), "the bot is silent");
    }
    // Even while the identity check waits: it is no attempt.
    let mut chat = Chat::new(Language::Es);
    chat.say("saldo");
    let s = chat.say("no soy Ana, número equivocado");
    assert_eq!(s.understood, "handoff:wrong_number");
    assert_eq!(chat.state.failed_checks, 0);
}

/// A debtor whose accounts are all settled is not offered to pay, a plan, a promise or a pause.
#[test]
fn a_settled_debtor_is_not_offered_to_pay() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].balance_minor = 0;
    chat.accounts[0].status = crate::domain::AccountStatus::Settled;
    chat.say("Hola");
    let offered = &chat.state.offered;
    assert_eq!(offered.len(), 4, "{offered:?}");
    use super::intent::ids;
    for id in [ids::PAY, ids::PLANS, ids::PROMISE, ids::PAUSE] {
        assert!(!offered.iter().any(|o| o == id), "{id}: {offered:?}");
    }
}

#[test]
fn nothing_about_the_debt_before_the_identity_check() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("¿Cuánto debo?");
    assert_eq!(s.understood, "identity_asked");
    let text = all_text(&s);
    assert!(!text.contains("150000"), "{text}");
    assert!(text.contains("4 últimos dígitos"));
    let s = chat.say("6785");
    assert!(s.effects.contains(&Effect::IdentityVerified));
    let text = all_text(&s);
    assert!(text.contains("150000 CLP"), "{text}");
    assert!(text.contains("15 días de atraso"), "{text}");
    // Verified for a while: the next question needs no check.
    let s = chat.say("saldo");
    assert_eq!(s.understood, "balance");
}

#[test]
fn wrong_answers_lock_the_check_for_a_while() {
    let mut chat = Chat::new(Language::Es);
    chat.say("saldo");
    let s = chat.say("1111");
    assert_eq!(s.effects, vec![Effect::IdentityFailed { left: 2 }]);
    chat.say("2222");
    let s = chat.say("3333");
    assert!(matches!(s.effects[0], Effect::IdentityLocked { .. }));
    assert!(all_text(&s).contains("30 minutos"));
    // Even the right answer is refused while locked.
    let s = chat.say("saldo");
    assert_eq!(s.understood, "identity_locked");
    chat.at = chat
        .at
        .checked_add(jiff::SignedDuration::from_mins(31))
        .unwrap();
    let s = chat.say("saldo");
    assert_eq!(s.understood, "identity_asked");
    let s = chat.say("6785");
    assert!(s.effects.contains(&Effect::IdentityVerified));
}

#[test]
fn without_an_answer_on_record_a_person_takes_over() {
    let mut chat = Chat::new(Language::Es);
    chat.identity = None;
    let s = chat.say("saldo");
    assert_eq!(s.understood, "handoff:identity_unavailable");
    assert!(matches!(chat.state.mode, Mode::Agent { .. }));
    assert_eq!(s.replies.len(), 1);
}

#[test]
fn date_of_birth_check() {
    let mut chat = Chat::new(Language::En);
    chat.tenant.chat.identity = IdentityCheck::BirthDate;
    let s = chat.say("what is my balance");
    assert!(all_text(&s).contains("date of birth"));
    let s = chat.say("7/4/1990");
    assert!(s.effects.contains(&Effect::IdentityVerified), "{s:?}");
}

#[test]
fn pay_asks_for_a_link_on_the_only_open_account() {
    let mut chat = Chat::new(Language::Es);
    chat.verified();
    let s = chat.tap(intent::ids::PAY);
    assert_eq!(
        s.effects,
        vec![Effect::PayLink {
            account: AccountId::parse("L-1").unwrap()
        }]
    );
}

#[test]
fn several_accounts_ask_which_one() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts
        .push(account("L-2", 50_000, date(2026, 12, 10)));
    chat.verified();
    let s = chat.say("quiero pagar");
    assert_eq!(s.understood, "pay:pick_account");
    assert_eq!(chat.state.offered, vec!["acct:L-1", "acct:L-2"]);
    let s = chat.say("2");
    assert_eq!(
        s.effects,
        vec![Effect::PayLink {
            account: AccountId::parse("L-2").unwrap()
        }]
    );
}

#[test]
fn plans_are_offered_within_the_tenant_rules_and_one_is_accepted() {
    let mut chat = Chat::new(Language::Pt);
    chat.verified();
    let s = chat.say("quero parcelar");
    assert_eq!(s.understood, "plans_offered");
    let Reply::Choices { options, .. } = &s.replies[0] else {
        panic!("a list")
    };
    assert_eq!(
        options.iter().map(|o| o.title.as_str()).collect::<Vec<_>>(),
        vec!["3 parcelas", "6 parcelas", "12 parcelas"]
    );
    assert!(options[0]
        .description
        .as_ref()
        .unwrap()
        .contains("50000 CLP"));
    let s = chat.tap("plan:1");
    let Effect::AcceptPlan { request, .. } = &s.effects[0] else {
        panic!("{s:?}")
    };
    assert_eq!(request.instalments, 6);
    assert!(
        all_text(&s).contains("6 parcelas de 25000 CLP"),
        "{}",
        all_text(&s)
    );
    // Fewer instalments allowed: fewer offers.
    let mut chat = Chat::new(Language::Es);
    chat.tenant.plan_rules.max_instalments = 4;
    chat.verified();
    let s = chat.say("plan de pagos");
    let Reply::Choices { options, .. } = &s.replies[0] else {
        panic!()
    };
    assert_eq!(options.len(), 2, "3 and 4");
}

fn plan_rows(s: &Step) -> Vec<(String, String)> {
    let Some(Reply::Choices { options, .. }) = s.replies.last() else {
        panic!("a list: {s:?}")
    };
    options
        .iter()
        .map(|o| (o.title.clone(), o.description.clone().unwrap_or_default()))
        .collect()
}

/// A down payment is due today and said so: in the offer and in the confirmation, not "the
/// first instalment is due today".
#[test]
fn plans_with_a_down_payment_say_it_is_due_today() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].balance_minor = 300_000;
    chat.tenant.plan_rules.min_down_payment_percent = 10;
    chat.verified();
    let s = chat.say("plan");
    let Reply::Choices { body, .. } = &s.replies[0] else {
        panic!()
    };
    assert!(
        body.contains("un pie de 30000 CLP hoy y el resto en cuotas desde el 02/12/2026"),
        "{body}"
    );
    assert_eq!(
        plan_rows(&s)[1],
        (
            "6 cuotas".to_string(),
            "pie 30000 CLP hoy y 45000 CLP c/u desde el 02/12/2026".to_string()
        )
    );
    let s = chat.tap("plan:1");
    let text = all_text(&s);
    assert!(
        text.starts_with(
            "Listo: un pie de 30000 CLP hoy y 6 cuotas de 45000 CLP desde el 02/12/2026."
        ),
        "{text}"
    );
    assert!(!text.contains("25/11/2026"), "{text}");
    assert!(!text.contains("total"), "no interest, no total: {text}");
}

/// A down payment the percentage makes smaller than the least instalment is raised to it: the
/// builder refuses a smaller one, so otherwise no plan would be offered at all.
#[test]
fn a_down_payment_is_never_below_the_least_instalment() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].balance_minor = 300_000;
    chat.tenant.plan_rules.min_down_payment_percent = 1;
    chat.tenant.plan_rules.min_instalment_minor = 20_000;
    chat.verified();
    let s = chat.say("plan");
    assert_eq!(s.understood, "plans_offered", "{s:?}");
    assert_eq!(
        plan_rows(&s)[0],
        (
            "3 cuotas".to_string(),
            "pie 20000 CLP hoy y 93334 CLP c/u desde el 02/12/2026".to_string()
        )
    );
}

/// With interest the total is more than the balance: each offer and the confirmation say it.
#[test]
fn plans_with_interest_show_the_total() {
    let mut chat = Chat::new(Language::Pt);
    chat.accounts[0].balance_minor = 300_000;
    chat.tenant.plan_rules.annual_interest_bps = 1200;
    chat.verified();
    let s = chat.say("quero parcelar");
    let rows = plan_rows(&s);
    assert_eq!(
        rows[1].1, "52959 CLP cada a partir de 02/12/2026; total 317753 CLP",
        "{rows:?}"
    );
    let s = chat.tap("plan:1");
    let text = all_text(&s);
    assert!(text.contains("6 parcelas de 52959 CLP"), "{text}");
    assert!(
        text.contains("No total, você vai pagar 317753 CLP, com 17753 CLP de juros."),
        "{text}"
    );
    // Both: every row still fits a WhatsApp list row (72 letters), in every language.
    for lang in [Language::Es, Language::Pt, Language::En] {
        let mut chat = Chat::new(lang);
        chat.accounts[0].balance_minor = 3_000_000;
        chat.tenant.plan_rules.annual_interest_bps = 1200;
        chat.tenant.plan_rules.min_down_payment_percent = 10;
        chat.verified();
        let s = chat.tap(intent::ids::PLANS);
        let Reply::Choices { body, .. } = &s.replies[0] else {
            panic!()
        };
        assert!(body.contains("300000 CLP"), "the down payment: {body}");
        for (_, d) in plan_rows(&s) {
            assert!(d.contains("300000 CLP") && d.contains("total"), "{d}");
            assert!(d.chars().count() <= 72, "{lang:?}: {d}");
        }
    }
    let mut chat = Chat::new(Language::En);
    chat.accounts[0].balance_minor = 300_000;
    chat.tenant.plan_rules.annual_interest_bps = 1200;
    chat.tenant.plan_rules.min_down_payment_percent = 10;
    chat.verified();
    chat.tap(intent::ids::PLANS);
    let text = all_text(&chat.tap("plan:1"));
    assert!(
        text.starts_with("Done: a down payment of 30000 CLP today and 6 instalments of 47663 CLP from December 2, 2026."),
        "{text}"
    );
    assert!(text.contains("In total you'll pay 315978 CLP"), "{text}");
}

/// On a numbered list "3" may be the third row (12 cuotas) or 3 cuotas: the bot asks which
/// instead of accepting 12 at once. A number that can only be a count is that count.
#[test]
fn a_typed_number_that_is_also_a_count_is_asked_about() {
    let mut chat = Chat::new(Language::Es);
    chat.channel = ChannelKind::Sms;
    chat.verified();
    chat.say("plan");
    assert_eq!(chat.state.offered, vec!["plan:0", "plan:1", "plan:2"]);
    let s = chat.say("3");
    assert_eq!(s.understood, "plan_which");
    assert!(s.effects.is_empty(), "nothing accepted: {s:?}");
    let text = all_text(&s);
    assert!(text.contains("1. 12 cuotas"), "{text}");
    assert!(text.contains("2. 3 cuotas"), "{text}");
    // "3" again: no third option now, so it is 3 cuotas.
    let s = chat.say("3");
    let Effect::AcceptPlan { request, .. } = &s.effects[0] else {
        panic!("{s:?}")
    };
    assert_eq!(request.instalments, 3);
    // Picking by the option's number works as ever.
    let mut chat = Chat::new(Language::Es);
    chat.channel = ChannelKind::Sms;
    chat.verified();
    chat.say("plan");
    chat.say("3");
    let s = chat.say("1");
    let Effect::AcceptPlan { request, .. } = &s.effects[0] else {
        panic!("{s:?}")
    };
    assert_eq!(request.instalments, 12);
    // A row that is no offered count, and a count that is no row, need no question.
    for (typed, n) in [("2", 6), ("6", 6), ("12", 12), ("3 cuotas", 3)] {
        let mut chat = Chat::new(Language::Es);
        chat.channel = ChannelKind::Sms;
        chat.verified();
        chat.say("plan");
        let s = chat.say(typed);
        let Some(Effect::AcceptPlan { request, .. }) = s.effects.first() else {
            panic!("{typed}: {s:?}")
        };
        assert_eq!(request.instalments, n, "{typed}");
    }
}

#[test]
fn a_promise_takes_a_date_within_the_limit() {
    let mut chat = Chat::new(Language::Es);
    chat.verified();
    let s = chat.tap(intent::ids::PROMISE);
    assert!(all_text(&s).contains("10/12/2026"), "{}", all_text(&s));
    let s = chat.say("el 30 de diciembre no, mejor 31/12");
    assert_eq!(s.understood, "promise_bad_date");
    let s = chat.say("el viernes");
    assert_eq!(
        s.effects,
        vec![Effect::Promise {
            account: AccountId::parse("L-1").unwrap(),
            by: date(2026, 11, 27),
            amount_minor: 150_000
        }]
    );
    assert!(all_text(&s).contains("27/11/2026"));
}

#[test]
fn a_pause_with_a_reason_pauses_every_open_account() {
    let mut chat = Chat::new(Language::En);
    let s = chat.say("I need a pause");
    assert_eq!(chat.state.awaiting, Awaiting::PauseReason);
    assert!(s.effects.is_empty());
    let s = chat.tap("pause:income");
    let Effect::Pause {
        accounts,
        until,
        reason,
    } = &s.effects[0]
    else {
        panic!()
    };
    assert_eq!(accounts.len(), 1);
    assert!(until.is_some());
    assert_eq!(reason, "debtor asked: income");
}

#[test]
fn a_dispute_stops_collection_on_the_account() {
    let mut chat = Chat::new(Language::Es);
    chat.verified();
    chat.say("no reconozco esta deuda");
    let s = chat.tap("dispute:paid");
    assert_eq!(
        s.effects,
        vec![Effect::Dispute {
            account: AccountId::parse("L-1").unwrap(),
            kind: "paid".into()
        }]
    );
    assert!(all_text(&s).contains("comprobante"));
}

#[test]
fn a_receipt_is_acknowledged() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.send(Content::Media {
        media: "image".into(),
        media_id: "m1".into(),
        mime_type: Some("image/jpeg".into()),
        sha256: None,
        caption: None,
        filename: None,
    });
    assert_eq!(s.effects, vec![Effect::Receipt]);
    assert!(all_text(&s).contains("Recibimos tu comprobante"));
}

#[test]
fn preferred_channel_and_hours() {
    let mut chat = Chat::new(Language::Es);
    chat.tap(intent::ids::PREFS);
    chat.tap(intent::ids::CHANNEL);
    let s = chat.tap("channel:email");
    assert_eq!(
        s.effects,
        vec![Effect::PreferChannel {
            channel: ChannelKind::Email
        }]
    );
    chat.say("horario");
    let s = chat.tap("hours:morning");
    assert_eq!(
        s.effects,
        vec![Effect::PreferHours {
            hours: Some(crate::compliance::Range::hours(9, 12))
        }]
    );
    assert!(all_text(&s).contains("09:00"));
    // The channel named wins over "mensaje", which alone means SMS.
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("mándame un mensaje por WhatsApp");
    assert_eq!(
        s.effects,
        vec![Effect::PreferChannel {
            channel: ChannelKind::Whatsapp
        }]
    );
    let mut chat = Chat::new(Language::Es);
    chat.tap(intent::ids::CHANNEL);
    let s = chat.say("por mensaje de texto");
    assert_eq!(
        s.effects,
        vec![Effect::PreferChannel {
            channel: ChannelKind::Sms
        }]
    );
    // A channel the tenant may not use is refused.
    let mut chat = Chat::new(Language::Es);
    chat.tenant.kind = TenantKind::Agency;
    let s = chat.say("por whatsapp");
    assert_eq!(s.understood, "channel_unavailable");
}

#[test]
fn opt_out_and_back_in_are_confirmed() {
    let mut chat = Chat::new(Language::Pt);
    let s = chat.say("SAIR");
    assert!(all_text(&s).contains("não vamos mais escrever por WhatsApp"));
    let s = chat.say("VOLTAR");
    assert_eq!(s.understood, "opt_in");
}

/// Asking to be left alone, in the debtor's own words, is an opt-out: never a "no" that
/// shows the payment menu, nor a misunderstanding.
#[test]
fn asking_to_be_left_alone_is_an_opt_out() {
    for (text, lang, all, words) in [
        ("No me escriban", Language::Es, true, "por ningún medio"),
        (
            "dejen de escribirme",
            Language::Es,
            true,
            "por ningún medio",
        ),
        (
            "pare de me mandar mensagens",
            Language::Pt,
            true,
            "nenhum meio",
        ),
        ("parem de me ligar", Language::Pt, true, "nenhum meio"),
        ("stop texting me", Language::En, false, "by WhatsApp"),
        ("don't contact me", Language::En, true, "on any channel"),
    ] {
        let mut chat = Chat::new(lang);
        let s = chat.say(text);
        assert_eq!(s.understood, "opt_out", "{text}");
        assert!(all_text(&s).contains(words), "{text}: {}", all_text(&s));
        assert!(chat.state.offered.is_empty(), "{text}: no menu");
        let scope = crate::compliance::classify_keyword(text);
        let want = if all {
            crate::compliance::OptKeyword::OptOutAll
        } else {
            crate::compliance::OptKeyword::OptOut
        };
        assert_eq!(scope, Some(want), "{text}: the consent record too");
    }
}

/// Near misses that meant something else: a lost password or a dead phone is no death, a
/// personal loan no request for a person, "de acuerdo" no payment plan.
#[test]
fn everyday_words_are_not_read_as_something_grave() {
    for text in ["perdi minha senha", "meu celular morreu", "my phone died"] {
        let mut chat = Chat::new(Language::Es);
        let s = chat.say(text);
        assert!(!s.understood.starts_with("vulnerability"), "{text}: {s:?}");
        assert!(s.effects.is_empty(), "{text}: {s:?}");
        assert_eq!(chat.state.mode, Mode::Bot, "{text}");
    }
    let mut chat = Chat::new(Language::Pt);
    let s = chat.say("perdi meu emprego");
    assert_eq!(s.understood, "vulnerability:unemployment");
    for text in [
        "quiero pagar mi préstamo personal",
        "pagar meu crédito pessoal",
    ] {
        let mut chat = Chat::new(Language::Es);
        let s = chat.say(text);
        assert_eq!(s.understood, "identity_asked", "{text}: read as paying");
        assert_eq!(chat.state.mode, Mode::Bot, "{text}");
    }
    let mut chat = Chat::new(Language::Es);
    assert_eq!(chat.say("nadie contesta").understood, "not_understood");
    assert_eq!(chat.say("de acuerdo").understood, "menu");
}

#[test]
fn asking_for_a_person_hands_over_and_the_bot_goes_silent() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("quiero hablar con una persona");
    assert_eq!(
        s.effects,
        vec![Effect::Handoff {
            reason: "asked".into(),
            urgent: false
        }]
    );
    let s = chat.say("saldo");
    assert!(s.replies.is_empty() && s.effects.is_empty());
    assert_eq!(s.understood, "silent:agent_owns");
    // An opt-out is still confirmed (the inbound records it whoever owns the conversation),
    // and the person keeps the conversation.
    let s = chat.say("BAJA");
    assert_eq!(s.understood, "opt_out");
    assert_eq!(s.replies.len(), 1, "{s:?}");
    assert!(matches!(s.state.mode, Mode::Agent { .. }));
}

#[test]
fn long_overdue_debtors_go_straight_to_a_person() {
    let mut chat = Chat::new(Language::Es);
    chat.tenant.chat.handoff_days_past_due = Some(10);
    let s = chat.say("hola");
    assert_eq!(s.understood, "handoff:days_past_due");
    let mut chat = Chat::new(Language::Es);
    chat.tenant.chat.handoff_days_past_due = Some(30);
    assert_eq!(chat.say("hola").understood, "menu");
}

#[test]
fn legal_holds_leave_it_to_a_person() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].holds.insolvency = true;
    let s = chat.say("saldo");
    assert_eq!(s.understood, "handoff:legal_hold");
    assert!(!all_text(&s).contains("150000"));
}

/// A lawsuit on one account: the other is still collected, the held one only shown as under
/// review, never offered to pay, plan or promise on.
#[test]
fn an_account_under_a_legal_hold_is_never_offered_for_collection() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].holds.lawsuit_served = true;
    chat.accounts
        .push(account("L-2", 50_000, date(2026, 12, 10)));
    chat.verified();
    let s = chat.say("quiero pagar");
    assert_eq!(
        s.effects,
        vec![Effect::PayLink {
            account: AccountId::parse("L-2").unwrap()
        }],
        "{s:?}"
    );
    let s = chat.say("saldo");
    let text = all_text(&s);
    assert!(text.contains("L-1: en revisión"), "{text}");
    assert!(!text.contains("150000"), "{text}");
    assert!(text.contains("50000 CLP"), "{text}");
    let s = chat.say("quiero un plan");
    assert_eq!(s.understood, "plans_offered");
    assert!(
        matches!(&chat.state.awaiting, Awaiting::Plan { account, .. } if account.as_str() == "L-2"),
        "{:?}",
        chat.state.awaiting
    );
    chat.say("hola");
    let s = chat.tap(intent::ids::PROMISE);
    assert_eq!(s.understood, "promise_asked");
    assert_eq!(
        chat.state.awaiting,
        Awaiting::PromiseDate {
            account: AccountId::parse("L-2").unwrap()
        }
    );
    // The debtor's own insolvency holds on both: a person answers.
    let mut chat = Chat::new(Language::Es);
    chat.accounts
        .push(account("L-2", 50_000, date(2026, 12, 10)));
    chat.debtor.holds.insolvency = true;
    assert_eq!(chat.say("quiero pagar").understood, "handoff:legal_hold");
}

/// Once the bot stopped collecting a disputed debt, it does not offer to collect it again.
#[test]
fn a_disputed_account_is_not_offered_after_the_dispute() {
    let mut chat = Chat::new(Language::Es);
    chat.verified();
    chat.say("no reconozco esta deuda");
    let s = chat.tap("dispute:paid");
    assert!(all_text(&s).contains("Detuvimos el cobro de L-1"));
    // What the inbound side does with the effect.
    chat.accounts[0].holds.dispute_open = true;
    // The receipt the bot asked for is still taken.
    let s = chat.send(media("image"));
    assert_eq!(s.effects, vec![Effect::Receipt]);
    let s = chat.say("hola");
    assert_eq!(s.understood, "handoff:dispute_open");
    assert!(!s
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Promise { .. })));
    // With another account open, that one is offered; the disputed one is not.
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].holds.dispute_open = true;
    chat.accounts
        .push(account("L-2", 50_000, date(2026, 12, 10)));
    chat.verified();
    chat.say("hola");
    assert!(chat.state.offered.iter().any(|o| o == intent::ids::PROMISE));
    chat.tap(intent::ids::PROMISE);
    let s = chat.say("el viernes");
    assert_eq!(
        s.effects,
        vec![Effect::Promise {
            account: AccountId::parse("L-2").unwrap(),
            by: date(2026, 11, 27),
            amount_minor: 50_000
        }]
    );
}

/// A paused account still owes: the balance shows it as paused, and it is not offered to pay.
#[test]
fn a_paused_account_shows_in_the_balance_and_is_not_collected() {
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].status = AccountStatus::Paused;
    chat.verified();
    let s = chat.say("¿cuánto debo?");
    assert_eq!(s.understood, "balance");
    let text = all_text(&s);
    assert!(text.contains("L-1: saldo 150000 CLP, en pausa"), "{text}");
    assert!(!text.contains("No tienes saldos"), "{text}");
    assert_eq!(chat.state.offered, vec![intent::ids::HUMAN]);
    chat.say("hola");
    use super::intent::ids;
    for id in [ids::PAY, ids::PLANS, ids::PROMISE] {
        assert!(!chat.state.offered.iter().any(|o| o == id), "{id}");
    }
    let s = chat.say("quiero pagar");
    assert_eq!(s.understood, "pay:held");
    assert!(s.effects.is_empty());
    assert!(all_text(&s).contains("PERSONA"));
    // A pause on the person (a breathing space) holds on the account too.
    let mut chat = Chat::new(Language::En);
    chat.debtor.holds.paused = true;
    chat.verified();
    let s = chat.say("I want a payment plan");
    assert_eq!(s.understood, "plans:held");
    // Settled: truly nothing owed.
    let mut chat = Chat::new(Language::Es);
    chat.accounts[0].balance_minor = 0;
    chat.accounts[0].status = AccountStatus::Settled;
    chat.verified();
    assert_eq!(chat.say("saldo").understood, "balance:nothing_due");
}

/// A running plan with instalments left of (due day, amount): the first 10,000 of 30,000 paid.
fn on_plan(chat: &mut Chat, unpaid: &[(Date, i64)]) {
    let a = &mut chat.accounts[0];
    a.balance_minor = unpaid.iter().map(|(_, x)| x).sum();
    a.plan = Some(crate::plans::PlanRef::owing("p-1", 30, unpaid));
}

/// The balance on a plan asks for what its reminders ask for: every instalment due today and
/// overdue, how many and their sum (never more than the balance), in the debtor's language;
/// before any is due, the next one.
#[test]
fn the_balance_on_a_plan_shows_every_instalment_due() {
    let three = [
        (date(2026, 10, 25), 20_000),
        (date(2026, 11, 25), 30_000),
        (date(2026, 12, 25), 30_000),
    ];
    let cases = [
        (
            Language::Es,
            "Tienes un plan de pagos: 2 cuotas por pagar hoy, 50000 CLP en total (pendientes desde el 25/10/2026).",
        ),
        (
            Language::Pt,
            "Você tem um parcelamento: 2 parcelas a pagar hoje, 50000 CLP no total (pendentes desde 25/10/2026).",
        ),
        (
            Language::En,
            "You're on a payment plan: 2 instalments to pay today, 50000 CLP in all (outstanding since October 25, 2026).",
        ),
    ];
    for (lang, line) in cases {
        let mut chat = Chat::new(lang);
        on_plan(&mut chat, &three);
        chat.verified();
        let text = all_text(&chat.say("saldo"));
        assert!(text.contains(line), "{lang:?}: {text}");
        let a = &chat.accounts[0];
        assert_eq!(a.reminder_target(TODAY), (date(2026, 10, 25), 50_000));
    }

    // Never more than the balance (a CRM lowered it): what the reminders ask for too.
    let mut chat = Chat::new(Language::Es);
    on_plan(&mut chat, &three);
    chat.accounts[0].balance_minor = 35_000;
    chat.verified();
    let text = all_text(&chat.say("saldo"));
    assert!(
        text.contains("2 cuotas por pagar hoy, 35000 CLP en total"),
        "{text}"
    );
    assert_eq!(chat.accounts[0].reminder_target(TODAY).1, 35_000);

    // One due (today): that one.
    let mut chat = Chat::new(Language::Es);
    on_plan(&mut chat, &three[1..]);
    chat.verified();
    let text = all_text(&chat.say("saldo"));
    assert!(
        text.contains(
            "Tienes un plan de pagos: 1 cuota por pagar hoy, de 30000 CLP (pendiente desde el 25/11/2026)."
        ),
        "{text}"
    );

    // None due yet: the next one.
    let mut chat = Chat::new(Language::Es);
    on_plan(&mut chat, &three[2..]);
    chat.verified();
    let text = all_text(&chat.say("saldo"));
    assert!(
        text.contains("Tienes un plan de pagos: próxima cuota de 30000 CLP el 25/12/2026."),
        "{text}"
    );
}

#[test]
fn vulnerability_pauses_hands_over_and_answers_with_care() {
    for (text, sign, lang) in [
        (
            "perdí mi trabajo y no puedo pagar",
            Sign::Unemployment,
            Language::Es,
        ),
        ("estou internada no hospital", Sign::Illness, Language::Pt),
        (
            "my mother passed away last week",
            Sign::Bereavement,
            Language::En,
        ),
    ] {
        let mut chat = Chat::new(lang);
        let s = chat.say(text);
        assert_eq!(s.effects[0], Effect::Vulnerable { sign }, "{text}");
        assert!(matches!(&s.effects[1], Effect::Pause { until: None, .. }));
        assert!(matches!(
            &s.effects[2],
            Effect::Handoff { urgent: false, .. }
        ));
        let reply = all_text(&s);
        assert!(!reply.contains("150000"), "never the debt: {reply}");
        assert!(matches!(chat.state.mode, Mode::Agent { .. }));
    }
}

#[test]
fn self_harm_gets_the_crisis_line_even_when_a_person_owns_the_chat() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("ya no quiero vivir");
    assert!(all_text(&s).contains("*4141"), "{}", all_text(&s));
    assert!(s.effects.contains(&Effect::Handoff {
        reason: "vulnerability: self_harm".into(),
        urgent: true
    }));
    // A Brazilian number gets Brazil's line, whatever the tenant's country.
    let mut chat = Chat::new(Language::Pt);
    chat.debtor.phone = Phone::parse("+5511987654321").unwrap();
    chat.say("quero falar com atendente");
    let s = chat.say("às vezes penso em me matar");
    assert!(all_text(&s).contains("188"), "{}", all_text(&s));
}

#[test]
fn the_language_follows_the_debtor_when_they_write_another() {
    let mut chat = Chat::new(Language::Es);
    let s = chat.say("Hi, I want to pay my debt");
    assert_eq!(chat.state.language, Some(Language::En));
    assert!(all_text(&s).contains("last 4 digits"), "{}", all_text(&s));
}

/// Portuguese with words Spanish shares ("pagar por favor") stays Portuguese.
#[test]
fn shared_words_do_not_switch_the_language() {
    let mut chat = Chat::new(Language::Pt);
    let s = chat.say("quero pagar por favor");
    assert_eq!(chat.state.language, None);
    assert!(
        all_text(&s).starts_with("Para proteger seus dados"),
        "{}",
        all_text(&s)
    );
}

#[test]
fn three_misunderstandings_in_a_row_reach_a_person() {
    let mut chat = Chat::new(Language::Es);
    assert_eq!(chat.say("asdf").understood, "not_understood");
    assert_eq!(chat.say("qwer").understood, "not_understood");
    assert_eq!(chat.say("zxcv").understood, "handoff:not_understood");
}

#[test]
fn a_disabled_bot_says_nothing() {
    let mut chat = Chat::new(Language::Es);
    chat.tenant.chat.enabled = false;
    assert!(chat.say("hola").replies.is_empty());
}

#[test]
fn the_engine_is_deterministic() {
    let mut a = Chat::new(Language::Es);
    let mut b = Chat::new(Language::Es);
    for text in ["hola", "saldo", "6785", "plan", "2", "el viernes"] {
        assert_eq!(a.say(text), b.say(text));
    }
}

fn reaction(emoji: Option<&str>) -> Content {
    Content::Reaction {
        to: "wamid.bot1".into(),
        emoji: emoji.map(str::to_string),
    }
}

fn media(kind: &str) -> Content {
    Content::Media {
        media: kind.into(),
        media_id: "m1".into(),
        mime_type: None,
        sha256: None,
        caption: None,
        filename: None,
    }
}

fn place() -> Content {
    Content::Location {
        latitude: -33.44,
        longitude: -70.65,
        name: None,
    }
}

/// Nothing said, nothing done, nothing changed.
fn assert_silent(s: &Step, before: &ChatState) {
    assert!(s.replies.is_empty(), "{s:?}");
    assert!(s.effects.is_empty(), "{s:?}");
    assert_eq!(&s.state, before, "{s:?}");
}

#[test]
fn reactions_while_the_identity_check_waits_are_no_attempts() {
    let mut chat = Chat::new(Language::Es);
    chat.say("saldo");
    let waiting = chat.state.clone();
    for emoji in [Some("👍"), Some("🙏"), None, Some("👍"), Some("😡")] {
        let s = chat.send(reaction(emoji));
        assert_eq!(s.understood, "silent:reaction");
        assert_silent(&s, &waiting);
    }
    assert_eq!(chat.state.failed_checks, 0);
    // The question still waits: the right answer verifies.
    let s = chat.say("6785");
    assert!(s.effects.contains(&Effect::IdentityVerified), "{s:?}");
}

#[test]
fn reactions_and_unsupported_messages_never_reach_a_person() {
    let mut chat = Chat::new(Language::Es);
    chat.say("hola");
    let before = chat.state.clone();
    let unsupported = Content::Unsupported {
        code: Some(131051),
        detail: "unsupported".into(),
    };
    for content in [
        reaction(Some("👍")),
        reaction(Some("👍")),
        reaction(None),
        unsupported.clone(),
        unsupported,
    ] {
        let s = chat.send(content);
        assert!(s.understood.starts_with("silent:"), "{}", s.understood);
        assert_silent(&s, &before);
    }
    assert_eq!(chat.state.mode, Mode::Bot);
    assert_eq!(chat.state.misunderstood, 0);
}

#[test]
fn what_the_bot_cannot_read_gets_one_polite_word_until_the_debtor_writes() {
    for (lang, words) in [
        (Language::Es, "Solo puedo leer texto y botones"),
        (Language::Pt, "Só consigo ler texto e botões"),
        (Language::En, "I can only read text and buttons"),
    ] {
        let mut chat = Chat::new(lang);
        let s = chat.send(media("sticker"));
        assert_eq!(s.understood, "wordless");
        assert_eq!(s.replies.len(), 1, "{s:?}");
        assert!(all_text(&s).starts_with(words), "{}", all_text(&s));
        assert!(s.effects.is_empty(), "{s:?}");
        // More of the same: said once is enough.
        for content in [
            media("audio"),
            place(),
            Content::Contacts { count: 1 },
            media("video"),
        ] {
            let s = chat.send(content);
            assert_eq!(s.understood, "silent:wordless_again");
            assert!(s.replies.is_empty() && s.effects.is_empty(), "{s:?}");
        }
        assert_eq!(chat.state.mode, Mode::Bot, "never a handoff");
        assert_eq!(chat.state.misunderstood, 0);
        // Once they write, the next sticker gets the word again.
        chat.say("hola");
        let s = chat.send(media("sticker"));
        assert_eq!(s.understood, "wordless");
        assert_eq!(s.replies.len(), 1);
    }
}

#[test]
fn a_sticker_or_a_photo_while_the_identity_check_waits_spends_no_attempt() {
    let mut chat = Chat::new(Language::Es);
    chat.say("saldo");
    let waiting = chat.state.awaiting.clone();
    let s = chat.send(media("sticker"));
    assert_eq!(s.understood, "wordless");
    assert!(s.effects.is_empty(), "{s:?}");
    chat.send(media("audio"));
    chat.send(place());
    // A photo is taken as a receipt, and is no answer to the question either.
    let s = chat.send(media("image"));
    assert_eq!(s.understood, "receipt");
    assert_eq!(s.effects, vec![Effect::Receipt]);
    assert_eq!(chat.state.awaiting, waiting);
    assert_eq!(chat.state.failed_checks, 0);
    assert_eq!(chat.state.locked_until, None);
    let s = chat.say("6785");
    assert!(s.effects.contains(&Effect::IdentityVerified), "{s:?}");
}

#[test]
fn what_the_bot_cannot_read_keeps_the_question_it_asked() {
    let mut chat = Chat::new(Language::Es);
    chat.verified();
    chat.tap(intent::ids::PROMISE);
    let waiting = chat.state.awaiting.clone();
    assert!(
        matches!(waiting, Awaiting::PromiseDate { .. }),
        "{waiting:?}"
    );
    // Neither is a date the bot could not read.
    let s = chat.send(media("sticker"));
    assert_eq!(s.understood, "wordless");
    let s = chat.send(reaction(Some("👍")));
    assert!(s.replies.is_empty(), "{s:?}");
    assert_eq!(chat.state.awaiting, waiting);
    let s = chat.say("mañana");
    assert_eq!(s.understood, "promise_made");
}
