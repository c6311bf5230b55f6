//! An item on the due index that a tick failed to decide: moved later, its failures counted,
//! so it neither blocks the items behind it nor is retried at every tick.

use jiff::Timestamp;

use super::{keys, written, RepoError, Store};
use crate::ports::table::{Condition, Item, Key, Update, DUE_INDEX};

/// Failures in a row of the item's decision; any other move of the item clears it
/// (`due_updates`), and a put of the whole item drops it.
pub(super) const DUE_FAILURES: &str = "due_failures";

/// Where an item read from the due index sits on it: what moving it later needs, taken before
/// the item is handed on to be decided.
#[derive(Debug, Clone)]
pub struct DueEntry {
    key: Key,
    due_sk: String,
    /// Failures in a row before this one.
    pub failures: u32,
}

impl DueEntry {
    /// `None` for an item without its keys or its due sort key (not read from the index).
    pub fn of(item: &Item) -> Option<Self> {
        Some(Self {
            key: Key::of(item)?,
            due_sk: item.get(DUE_INDEX.sk)?.as_str()?.to_string(),
            failures: item
                .get(DUE_FAILURES)
                .and_then(|v| v.as_u64())
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        })
    }

    /// The account whose partition holds it: every due item lives in one.
    pub fn account(&self) -> &str {
        self.key
            .pk
            .split_once("#ACCOUNT#")
            .map_or("", |(_, account)| account)
    }
}

impl Store {
    /// Moves an item a tick failed to decide to `at`, counting the failure. `false` when it was
    /// moved or finished meanwhile: that change stands.
    pub async fn postpone_due(&self, e: &DueEntry, at: Timestamp) -> Result<bool, RepoError> {
        let what = e.due_sk.split_once('#').map_or("", |(_, what)| what);
        let updates = vec![
            Update::set(DUE_INDEX.sk, keys::due_sk(at.as_second(), what)),
            Update::set("next_action_at", at.to_string()),
            Update::add(DUE_FAILURES, 1),
        ];
        // Only where it was read: never back onto the index, nor over a newer time.
        let unmoved = Condition::eq(DUE_INDEX.sk, e.due_sk.as_str());
        written(self.table.update(&e.key, updates, Some(unmoved)).await)
    }
}
