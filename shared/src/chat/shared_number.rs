//! A message from a number several debtors share (a family phone, a shop's line). The bot
//! cannot tell who writes, so it never speaks of a debt there: care still comes first, an
//! opt-out or opt-in is confirmed (inbound applies it to every debtor of the number), and
//! anything else goes to a person, who owns the conversation from then on.

use super::engine::{hand_off, step, Step, Turn};
use super::intent::{self, Intent};
use super::state::{ChatState, Mode};
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
    if matches!(state.mode, Mode::Agent { .. }) {
        return Step {
            state: state.clone(),
            replies: vec![],
            effects: vec![],
            understood: "silent:agent_owns".into(),
        };
    }
    hand_off(state, turn, SHARED_NUMBER)
}
