//! The chatbot's words: built in (`shared/data/chat_texts.json`, Spanish, Portuguese and
//! English), overridable per tenant with the same placeholders.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::settings::ChatSettings;
use crate::domain::Language;

type Texts = BTreeMap<String, BTreeMap<String, String>>;

fn builtin() -> &'static Texts {
    static TEXTS: OnceLock<Texts> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let raw: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(include_str!("../../data/chat_texts.json"))
                .expect("chat_texts.json is valid JSON");
        raw.into_iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k, serde_json::from_value(v).expect("language → text")))
            .collect()
    })
}

/// The `{names}` a text uses.
fn names_in(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

/// The placeholders a key's built-in text has; `None` for an unknown key.
pub fn placeholders(key: &str) -> Option<Vec<String>> {
    let by_lang = builtin().get(key)?;
    let mut names: Vec<String> = by_lang
        .values()
        .flat_map(|t| names_in(t))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// A placeholder in `text` that the key does not have.
pub fn unknown_placeholder(text: &str, known: &[String]) -> Option<String> {
    names_in(text)
        .into_iter()
        .find(|n| !known.iter().any(|k| k == n))
        .map(str::to_string)
}

/// The text for `key` in `language`, the tenant's own wording first, with its placeholders
/// filled. A key missing in a language falls back to Spanish.
pub fn say(
    settings: &ChatSettings,
    key: &str,
    language: Language,
    args: &[(&str, &str)],
) -> String {
    let lang = language.code();
    let template = settings
        .texts
        .get(key)
        .and_then(|t| t.get(lang))
        .or_else(|| builtin().get(key).and_then(|t| t.get(lang)))
        .or_else(|| builtin().get(key).and_then(|t| t.get("es")))
        .unwrap_or_else(|| panic!("no chat text `{key}`"));
    let mut out = template.clone();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_exists_in_every_language_with_the_same_placeholders() {
        for (key, by_lang) in builtin() {
            let mut seen: Option<Vec<&str>> = None;
            for lang in ["es", "pt", "en"] {
                let text = by_lang
                    .get(lang)
                    .unwrap_or_else(|| panic!("{key} has no {lang} text"));
                let mut names = names_in(text);
                names.sort();
                if let Some(prev) = &seen {
                    assert_eq!(prev, &names, "{key} ({lang}) placeholders differ");
                }
                seen = Some(names);
            }
        }
    }

    #[test]
    fn whatsapp_title_limits_hold() {
        // Button titles: 20 characters; list row titles: 24.
        let buttons = [
            "opt_pay",
            "pause_income",
            "pause_health",
            "pause_other",
            "dispute_not_mine",
            "dispute_paid",
            "dispute_amount",
            "prefs_channel",
            "prefs_hours",
            "hours_morning",
            "hours_afternoon",
            "hours_evening",
            "menu_button",
            "accounts_button",
            "plans_button",
        ];
        for key in buttons {
            for (lang, t) in &builtin()[key] {
                assert!(t.chars().count() <= 20, "{key} ({lang}) is too long: {t}");
            }
        }
        for key in [
            "opt_balance",
            "opt_plans",
            "opt_promise",
            "opt_pause",
            "opt_dispute",
            "opt_prefs",
            "opt_human",
        ] {
            for (lang, t) in &builtin()[key] {
                assert!(t.chars().count() <= 24, "{key} ({lang}) is too long: {t}");
            }
        }
    }

    #[test]
    fn tenant_wording_wins_and_placeholders_are_filled() {
        let mut settings = ChatSettings::default();
        settings.texts.insert(
            "handoff".into(),
            [("es".to_string(), "Un ejecutivo te atenderá.".to_string())].into(),
        );
        assert_eq!(
            say(&settings, "handoff", Language::Es, &[]),
            "Un ejecutivo te atenderá."
        );
        assert!(say(&settings, "handoff", Language::En, &[]).starts_with("We're passing"));
        assert_eq!(
            say(&settings, "identity_wrong", Language::Es, &[("left", "2")]),
            "Ese dato no coincide. Te quedan 2 intentos."
        );
    }

    #[test]
    fn settings_refuse_unknown_keys_and_placeholders() {
        let mut s = ChatSettings::default();
        s.texts
            .insert("nope".into(), [("es".to_string(), "x".to_string())].into());
        assert_eq!(s.validate().unwrap_err().0, "chat.texts.nope");
        let mut s = ChatSettings::default();
        s.texts.insert(
            "pause_done".into(),
            [("es".to_string(), "hasta {fecha}".to_string())].into(),
        );
        assert_eq!(s.validate().unwrap_err().0, "chat.texts.pause_done.es");
    }
}
