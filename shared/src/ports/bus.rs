//! `Bus`: publishes domain events, as EventBridge. Rules route events to targets by source and
//! detail type; the in-process adapter routes to queues the way EventBridge routes to SQS.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Every event cobro publishes has this source.
pub const SOURCE: &str = "cobro";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(detail_type: &str, detail: serde_json::Value) -> Self {
        Self {
            source: SOURCE.into(),
            detail_type: detail_type.into(),
            detail,
        }
    }
}

/// A rule's pattern: an event matches when its source is one of `sources` and its detail type
/// one of `detail_types` (an empty list matches anything), as EventBridge's simplest patterns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pattern {
    pub sources: Vec<String>,
    pub detail_types: Vec<String>,
}

impl Pattern {
    pub fn matches(&self, e: &Event) -> bool {
        (self.sources.is_empty() || self.sources.contains(&e.source))
            && (self.detail_types.is_empty() || self.detail_types.contains(&e.detail_type))
    }

    /// The same pattern as EventBridge JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if !self.sources.is_empty() {
            m.insert("source".into(), self.sources.clone().into());
        }
        if !self.detail_types.is_empty() {
            m.insert("detail-type".into(), self.detail_types.clone().into());
        }
        m.into()
    }
}

/// EventBridge's limit on one PutEvents.
pub const MAX_PUT_EVENTS: usize = 10;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BusError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("the bus failed: {0}")]
    Backend(String),
}

/// Validation shared by the adapters, so both reject the same events.
pub fn check_events(events: &[Event]) -> Result<(), BusError> {
    match events.iter().find(|e| !e.detail.is_object()) {
        Some(e) => Err(BusError::Invalid(format!(
            "the detail of a `{}` event must be a JSON object",
            e.detail_type
        ))),
        None => Ok(()),
    }
}

#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes the events (any number; adapters split by their own limits). Fails unless
    /// every event was accepted.
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError>;
}
