//! The reminder texts, per language: a creditor's service messages, kind and clear, never
//! threats. On WhatsApp they are sent as approved utility templates of the same names.

use crate::domain::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderKind {
    BeforeDue,
    DueToday,
    Overdue,
}

impl ReminderKind {
    pub fn for_step(step: i32) -> Self {
        match step {
            s if s < 0 => ReminderKind::BeforeDue,
            0 => ReminderKind::DueToday,
            _ => ReminderKind::Overdue,
        }
    }

    /// The template's name at the provider.
    pub fn template(self) -> &'static str {
        match self {
            ReminderKind::BeforeDue => "payment_reminder_before_due",
            ReminderKind::DueToday => "payment_reminder_due_today",
            ReminderKind::Overdue => "payment_reminder_overdue",
        }
    }
}

pub struct ReminderVars<'a> {
    pub name: &'a str,
    pub creditor: &'a str,
    pub amount: &'a str,
    pub due_date: &'a str,
}

/// The template's body parameters in the order of its placeholders ({{1}}, {{2}}, …): the
/// number must match the approved template exactly, or Meta refuses the send (132000).
pub fn params(kind: ReminderKind, v: &ReminderVars<'_>) -> Vec<String> {
    let mut p = vec![
        v.name.to_string(),
        v.amount.to_string(),
        v.creditor.to_string(),
    ];
    if kind != ReminderKind::DueToday {
        p.push(v.due_date.to_string());
    }
    p
}

pub fn render(kind: ReminderKind, lang: Language, v: &ReminderVars<'_>) -> String {
    let ReminderVars {
        name,
        creditor,
        amount,
        due_date,
    } = v;
    match (lang, kind) {
        (Language::Es, ReminderKind::BeforeDue) => format!(
            "Hola {name}, te recordamos que tu pago de {amount} a {creditor} vence el {due_date}. Si ya pagaste, ignora este mensaje."
        ),
        (Language::Es, ReminderKind::DueToday) => format!(
            "Hola {name}, hoy vence tu pago de {amount} a {creditor}. Si necesitas ayuda, responde a este mensaje."
        ),
        (Language::Es, ReminderKind::Overdue) => format!(
            "Hola {name}, tu pago de {amount} a {creditor} quedó pendiente el {due_date}. Podemos ayudarte con opciones de pago: responde a este mensaje."
        ),
        (Language::Pt, ReminderKind::BeforeDue) => format!(
            "Olá {name}, lembramos que o seu pagamento de {amount} a {creditor} vence em {due_date}. Se já pagou, desconsidere esta mensagem."
        ),
        (Language::Pt, ReminderKind::DueToday) => format!(
            "Olá {name}, hoje vence o seu pagamento de {amount} a {creditor}. Se precisar de ajuda, responda a esta mensagem."
        ),
        (Language::Pt, ReminderKind::Overdue) => format!(
            "Olá {name}, o seu pagamento de {amount} a {creditor} ficou pendente em {due_date}. Podemos ajudar com opções de pagamento: responda a esta mensagem."
        ),
        (Language::En, ReminderKind::BeforeDue) => format!(
            "Hi {name}, a reminder that your payment of {amount} to {creditor} is due on {due_date}. If you have already paid, please ignore this message."
        ),
        (Language::En, ReminderKind::DueToday) => format!(
            "Hi {name}, your payment of {amount} to {creditor} is due today. If you need help, reply to this message."
        ),
        (Language::En, ReminderKind::Overdue) => format!(
            "Hi {name}, your payment of {amount} to {creditor} was due on {due_date}. We can help with payment options: reply to this message."
        ),
    }
}

/// The receipt for a payment, per language: what was received and what is left.
pub fn receipt(lang: Language, name: &str, amount: &str, creditor: &str, balance: &str) -> String {
    match lang {
        Language::Es => format!(
            "Hola {name}, recibimos tu pago de {amount} a {creditor}. Saldo pendiente: {balance}. ¡Gracias!"
        ),
        Language::Pt => format!(
            "Olá {name}, recebemos o seu pagamento de {amount} a {creditor}. Saldo em aberto: {balance}. Obrigado!"
        ),
        Language::En => format!(
            "Hi {name}, we received your payment of {amount} to {creditor}. Balance left: {balance}. Thank you!"
        ),
    }
}

/// The receipt's template name at the provider; its parameters are name, amount, creditor,
/// balance.
pub const RECEIPT_TEMPLATE: &str = "payment_receipt";
