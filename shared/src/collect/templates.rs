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

/// One of cobro's own reminder templates, registered with the opt-out button as
/// docs/whatsapp.md says.
pub fn is_builtin_reminder(name: &str) -> bool {
    [
        ReminderKind::BeforeDue,
        ReminderKind::DueToday,
        ReminderKind::Overdue,
    ]
    .iter()
    .any(|k| k.template() == name)
}

/// Whether the template a step names for a language carries the opt-out quick reply: the
/// built-in reminders do, a tenant's own only when its step says so.
pub fn has_opt_out_button(step: &crate::collect::strategy::Step, name: &str) -> bool {
    step.opt_out_button || is_builtin_reminder(name)
}

/// One message template a tenant needs approved at Meta before WhatsApp can carry it outside
/// the 24-hour window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateSpec {
    pub name: String,
    /// Meta's language code (`es`, `pt_BR`, `en`).
    pub language: &'static str,
    /// Always `UTILITY`: a creditor's service message about an existing debt.
    pub category: &'static str,
    /// What each placeholder `{{1}}`, `{{2}}` … holds, in order; the count must match exactly.
    pub parameters: Vec<&'static str>,
    /// The body as cobro writes it, with the placeholders; `None` for the tenant's own
    /// templates (the tenant wrote them; only their parameters are fixed).
    pub body: Option<String>,
    /// Where it is used: `built-in`, or `<strategy>: day <n>` for each step that names it.
    pub used_by: Vec<String>,
    /// The label of its one quick-reply button, the opt-out (payload `OPTOUT`, sent with each
    /// message): the built-in reminders have it, the receipt none, a tenant's own template
    /// when its step declares `opt_out_button`.
    pub opt_out_button: Option<&'static str>,
}

fn placeholders(kind: ReminderKind) -> Vec<&'static str> {
    let mut p = vec!["name", "amount", "creditor"];
    if kind != ReminderKind::DueToday {
        p.push("due date");
    }
    p
}

/// Every template the tenant's messages use: the built-in reminders and receipt in each
/// language, and the names its strategies give their steps instead.
pub fn tenant_templates(book: Option<&crate::collect::StrategyBook>) -> Vec<TemplateSpec> {
    use crate::whatsapp::send::template_language;
    let languages = [Language::Es, Language::Pt, Language::En];
    let mut out = vec![];
    for kind in [
        ReminderKind::BeforeDue,
        ReminderKind::DueToday,
        ReminderKind::Overdue,
    ] {
        for lang in languages {
            let vars = ReminderVars {
                name: "{{1}}",
                amount: "{{2}}",
                creditor: "{{3}}",
                due_date: "{{4}}",
            };
            out.push(TemplateSpec {
                name: kind.template().into(),
                language: template_language(lang),
                category: "UTILITY",
                parameters: placeholders(kind),
                body: Some(render(kind, lang, &vars)),
                used_by: vec!["built-in".into()],
                opt_out_button: Some(crate::compliance::keywords::opt_out_button(lang)),
            });
        }
    }
    for lang in languages {
        out.push(TemplateSpec {
            name: RECEIPT_TEMPLATE.into(),
            language: template_language(lang),
            category: "UTILITY",
            parameters: vec!["name", "amount", "creditor", "balance"],
            body: Some(receipt(lang, "{{1}}", "{{2}}", "{{3}}", "{{4}}")),
            used_by: vec!["built-in".into()],
            opt_out_button: None,
        });
    }
    for strategy in book.map(|b| b.strategies.as_slice()).unwrap_or_default() {
        for step in &strategy.steps {
            for (lang, name) in &step.templates {
                let used = format!("{}: day {}", strategy.id, step.day);
                let language = template_language(*lang);
                match out
                    .iter_mut()
                    .find(|t| &t.name == name && t.language == language)
                {
                    Some(t) => t.used_by.push(used),
                    None => out.push(TemplateSpec {
                        name: name.clone(),
                        language,
                        category: "UTILITY",
                        parameters: placeholders(ReminderKind::for_step(step.day)),
                        body: None,
                        used_by: vec![used],
                        opt_out_button: has_opt_out_button(step, name)
                            .then(|| crate::compliance::keywords::opt_out_button(*lang)),
                    }),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod catalog_tests {
    use super::*;

    #[test]
    fn built_ins_carry_their_placeholders_and_custom_names_their_steps() {
        let all = tenant_templates(None);
        assert_eq!(all.len(), 12, "3 reminders and a receipt in 3 languages");
        let overdue_pt = all
            .iter()
            .find(|t| t.name == "payment_reminder_overdue" && t.language == "pt_BR")
            .unwrap();
        let body = overdue_pt.body.as_deref().unwrap();
        for n in 1..=4 {
            assert!(body.contains(&format!("{{{{{n}}}}}")), "{body}");
        }
        assert_eq!(overdue_pt.parameters.len(), 4);
        assert_eq!(overdue_pt.opt_out_button, Some("Não receber mais"));
        for t in &all {
            let receipt = t.name == RECEIPT_TEMPLATE;
            assert_eq!(t.opt_out_button.is_none(), receipt, "{}", t.name);
        }
        let today = all
            .iter()
            .find(|t| t.name == "payment_reminder_due_today")
            .unwrap();
        assert!(!today.body.as_deref().unwrap().contains("{{4}}"));

        let book: crate::collect::StrategyBook = serde_json::from_value(serde_json::json!({
            "strategies": [{ "id": "soft", "steps": [
                { "day": 0, "templates": { "es": "acme_hoy" } },
                { "day": 5, "templates": { "es": "acme_atraso", "en": "payment_reminder_overdue" } },
                { "day": 9, "templates": { "es": "acme_boton" }, "opt_out_button": true }
            ]}],
            "default": "soft"
        }))
        .unwrap();
        let all = tenant_templates(Some(&book));
        let hoy = all.iter().find(|t| t.name == "acme_hoy").unwrap();
        assert_eq!(hoy.parameters, ["name", "amount", "creditor"]);
        assert_eq!(hoy.body, None);
        assert_eq!(hoy.used_by, ["soft: day 0"]);
        // A tenant's own template has the button only when its step says so.
        assert_eq!(hoy.opt_out_button, None);
        let boton = all.iter().find(|t| t.name == "acme_boton").unwrap();
        assert_eq!(boton.opt_out_button, Some("No recibir más"));
        let overdue_en = all
            .iter()
            .find(|t| t.name == "payment_reminder_overdue" && t.language == "en")
            .unwrap();
        assert_eq!(overdue_en.used_by, ["built-in", "soft: day 5"]);
    }
}
