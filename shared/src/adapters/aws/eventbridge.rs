//! `Bus` on EventBridge.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::describe;
use crate::ports::bus::{check_events, Bus, BusError, Event, MAX_PUT_EVENTS};

#[derive(Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus_name.into(),
        }
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        check_events(&events)?;
        // Events already accepted stay published if a later chunk fails: the error says how many.
        let mut n = 0;
        for chunk in events.chunks(MAX_PUT_EVENTS) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| BusError::Backend(describe(&e)))?;
            if out.failed_entry_count() > 0 {
                // Results line up with the entries sent: name each refused event by its place
                // in this call and its detail type, with EventBridge's reason.
                let refused: Vec<String> = out
                    .entries()
                    .iter()
                    .zip(chunk)
                    .enumerate()
                    .filter_map(|(i, (r, e))| {
                        r.error_code().map(|c| {
                            format!(
                                "#{} `{}`: {c} {}",
                                n + i,
                                e.detail_type,
                                r.error_message().unwrap_or_default()
                            )
                        })
                    })
                    .collect();
                return Err(BusError::Backend(format!(
                    "EventBridge refused {} of events #{}..#{} (the others up to #{} were \
                     published, none after): {}",
                    out.failed_entry_count(),
                    n,
                    n + chunk.len() - 1,
                    n + chunk.len() - 1,
                    refused.join("; ")
                )));
            }
            n += chunk.len();
        }
        Ok(())
    }
}
