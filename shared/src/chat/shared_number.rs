//! A message from a number several debtors share (a family phone, a shop's line). The bot
//! cannot tell who writes, so it never speaks of a debt there: care still comes first, an
//! opt-out or opt-in is confirmed (inbound applies it to every debtor of the number), and
//! anything else goes to a person, who owns the conversation from then on.

use super::engine::{step, Step, Turn};
use super::intent::{self, Intent};
use super::state::{Awaiting, ChatState, Effect, Mode, Reply};
use super::texts::say;
use super::vulnerability;

/// The reason a shared number's conversation is handed to a person.
pub const SHARED_NUMBER: &str = "shared_number";

/// One message on a shared number, for the conversation of the debtor the handoff names.
pub fn step_shared(state: &ChatState, turn: &Turn<'_>) -> Step {
    let text = turn.content.text();
    let care = text.and_then(vulnerability::detect).is_some();
    let opt = matches!(
        intent::read(turn.content, &[]),
        Intent::OptOut | Intent::OptOutAll | Intent::OptIn
    );
    // The engine's own answers to these name no debt and no person.
    if care || opt {
        return step(state, turn);
    }
    let mut state = state.clone();
    if matches!(state.mode, Mode::Agent { .. }) {
        return Step {
            state,
            replies: vec![],
            effects: vec![],
            understood: "silent:agent_owns".into(),
        };
    }
    state.mode = Mode::Agent {
        since: turn.now,
        reason: SHARED_NUMBER.into(),
    };
    state.awaiting = Awaiting::Nothing;
    state.offered.clear();
    let settings = &turn.tenant.chat;
    let lang = state.language.unwrap_or(turn.debtor.language);
    // A bot the tenant switched off says nothing; the person still gets the conversation.
    let replies = if settings.enabled {
        vec![Reply::text(say(settings, "handoff", lang, &[]))]
    } else {
        vec![]
    };
    Step {
        state,
        replies,
        effects: vec![Effect::Handoff {
            reason: SHARED_NUMBER.into(),
            urgent: false,
        }],
        understood: format!("handoff:{SHARED_NUMBER}"),
    }
}
