//! The in-process `Bus`: routes each event to the queues whose rule pattern matches, wrapped in
//! the same envelope EventBridge delivers to an SQS target, so consumers parse one format.

use async_trait::async_trait;
use std::sync::Arc;

use crate::ports::bus::check_events;
use crate::ports::{Bus, BusError, Event, Outgoing, Pattern, Queue};

#[derive(Default, Clone)]
pub struct LocalBus {
    routes: Vec<(Pattern, Arc<dyn Queue>)>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(mut self, pattern: Pattern, target: Arc<dyn Queue>) -> Self {
        self.routes.push((pattern, target));
        self
    }
}

/// The JSON EventBridge puts on an SQS target for one event.
pub fn envelope(event: &Event, time: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": event.detail_type,
        "source": event.source,
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "local",
        "resources": [],
        "detail": event.detail,
    })
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        check_events(&events)?;
        let now = jiff::Timestamp::now();
        for (pattern, target) in &self.routes {
            let matching: Vec<Outgoing> = events
                .iter()
                .filter(|e| pattern.matches(e))
                .enumerate()
                .map(|(i, e)| Outgoing::new(i.to_string(), envelope(e, now).to_string()))
                .collect();
            crate::ports::queue::send_all(target.as_ref(), matching)
                .await
                .map_err(|e| BusError::Backend(e.to_string()))?;
        }
        Ok(())
    }
}
