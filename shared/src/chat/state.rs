//! A conversation's state between two messages, stored per debtor: who owns it (the bot or a
//! person), what the bot is waiting for, and the identity check's progress.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::vulnerability::Sign;
use crate::compliance::Range;
use crate::domain::{AccountId, ChannelKind, Language};
use crate::plans::PlanRequest;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Bot,
    /// A person owns the conversation: the bot stays silent.
    Agent { since: Timestamp, reason: String },
}

/// What needs the debtor to be verified first, and an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Balance,
    Pay,
    Plans,
    Promise,
    Dispute,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Awaiting {
    #[default]
    Nothing,
    Identity {
        then: Want,
    },
    Account {
        then: Want,
    },
    Plan {
        account: AccountId,
        offers: Vec<PlanRequest>,
    },
    PromiseDate {
        account: AccountId,
    },
    PauseReason,
    DisputeKind {
        account: AccountId,
    },
    Preference,
    Channel,
    Hours,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatState {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub awaiting: Awaiting,
    /// The ids of the choices last offered, in order: a bare "2" picks the second.
    #[serde(default)]
    pub offered: Vec<String>,
    #[serde(default)]
    pub verified_until: Option<Timestamp>,
    #[serde(default)]
    pub failed_checks: u32,
    #[serde(default)]
    pub locked_until: Option<Timestamp>,
    /// Set when the debtor writes in another language than their record's.
    #[serde(default)]
    pub language: Option<Language>,
    /// Messages in a row the bot did not understand.
    #[serde(default)]
    pub misunderstood: u32,
    /// The bot said it reads only text and buttons, and the debtor has not written since.
    #[serde(default)]
    pub told_text_only: bool,
    /// The most urgent sign of vulnerability seen.
    #[serde(default)]
    pub vulnerable: Option<Sign>,
    /// Bumped on every save: concurrent messages for one debtor cannot overwrite each other.
    #[serde(default)]
    pub version: u64,
}

/// One choice the bot offers: a button or a list row (a numbered line on SMS and e-mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Text {
        body: String,
    },
    /// Up to three short choices become buttons, more (or any with a description) a list.
    Choices {
        body: String,
        button: String,
        options: Vec<Choice>,
    },
}

impl Reply {
    pub fn text(body: impl Into<String>) -> Self {
        Reply::Text { body: body.into() }
    }

    /// The reply as plain text: what SMS and e-mail carry, and what the conversation log keeps.
    pub fn plain(&self) -> String {
        match self {
            Reply::Text { body } => body.clone(),
            Reply::Choices { body, options, .. } => {
                let mut out = body.clone();
                for (i, o) in options.iter().enumerate() {
                    out.push_str(&format!("\n{}. {}", i + 1, o.title));
                    if let Some(d) = &o.description {
                        out.push_str(&format!(" ({d})"));
                    }
                }
                out
            }
        }
    }
}

/// What the bot does besides replying; the runner applies these through the repositories and
/// the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    IdentityVerified,
    IdentityFailed {
        left: u32,
    },
    IdentityLocked {
        until: Timestamp,
    },
    /// A payment link for the account's next amount due; the runner replies with it.
    PayLink {
        account: AccountId,
    },
    AcceptPlan {
        account: AccountId,
        request: PlanRequest,
    },
    Promise {
        account: AccountId,
        by: Date,
        amount_minor: i64,
    },
    /// `until: None` lasts until a person lifts it.
    Pause {
        accounts: Vec<AccountId>,
        until: Option<Timestamp>,
        reason: String,
    },
    Dispute {
        account: AccountId,
        kind: String,
    },
    PreferChannel {
        channel: ChannelKind,
    },
    PreferHours {
        hours: Option<Range>,
    },
    Handoff {
        reason: String,
        urgent: bool,
    },
    Vulnerable {
        sign: Sign,
    },
    Receipt,
}
