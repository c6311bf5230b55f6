//! What a tenant decides about its chatbot: how a debtor proves who they are, how long a pause
//! lasts, when a conversation goes straight to a person, and its own wording.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::vulnerability::CrisisLine;

/// The question asked before anything about a debt is shown to a number not yet verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// The last four digits of the debtor's national id (RUT, CPF, DNI, SSN …).
    #[default]
    NationalIdLast4,
    /// The date of birth, day/month/year.
    BirthDate,
    /// The number on record is proof enough (the tenant accepts the risk of a reassigned
    /// number); say so explicitly, it is never the default.
    PhoneOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// `false` turns the bot off: messages are still recorded and opt-outs honoured.
    pub enabled: bool,
    pub identity: IdentityCheck,
    /// Wrong answers before the check locks.
    pub identity_attempts: u32,
    /// How long a lock lasts.
    pub lock_minutes: u32,
    /// How long a verified number stays verified.
    pub verified_days: u32,
    /// How long a pause the debtor asks for lasts.
    pub pause_days: u32,
    /// Debtors this many days past due (or more) go straight to a person when they write.
    pub handoff_days_past_due: Option<u32>,
    /// Overrides the built-in crisis line of the debtor's country.
    pub crisis_line: Option<CrisisLine>,
    /// The tenant's own wording: text key → language code → text (`texts::KEYS` lists the
    /// keys and their placeholders).
    pub texts: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            identity: IdentityCheck::default(),
            identity_attempts: 3,
            lock_minutes: 30,
            verified_days: 30,
            pause_days: 30,
            handoff_days_past_due: None,
            crisis_line: None,
            texts: BTreeMap::new(),
        }
    }
}

impl ChatSettings {
    /// The error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.identity_attempts == 0 || self.identity_attempts > 10 {
            return Err(("chat.identity_attempts".into(), "is 1 to 10".into()));
        }
        if self.lock_minutes == 0 || self.lock_minutes > 7 * 24 * 60 {
            return Err(("chat.lock_minutes".into(), "is 1 to 10080 (a week)".into()));
        }
        if self.verified_days == 0 || self.verified_days > 365 {
            return Err(("chat.verified_days".into(), "is 1 to 365".into()));
        }
        if self.pause_days == 0 || self.pause_days > 90 {
            return Err(("chat.pause_days".into(), "is 1 to 90".into()));
        }
        for (key, by_lang) in &self.texts {
            let Some(known) = super::texts::placeholders(key) else {
                return Err((
                    format!("chat.texts.{key}"),
                    "is not a known text key".into(),
                ));
            };
            for (lang, text) in by_lang {
                if crate::domain::Language::parse(lang).is_err() {
                    return Err((
                        format!("chat.texts.{key}.{lang}"),
                        "is not a supported language (es, pt, en)".into(),
                    ));
                }
                if let Some(bad) = super::texts::unknown_placeholder(text, &known) {
                    return Err((
                        format!("chat.texts.{key}.{lang}"),
                        format!("uses `{{{bad}}}`, which this text does not have"),
                    ));
                }
            }
        }
        Ok(())
    }
}
