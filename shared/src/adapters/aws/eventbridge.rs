//! `Bus` on EventBridge.

use async_trait::async_trait;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

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
                .map_err(|e| {
                    BusError::Backend(match e.as_service_error() {
                        Some(s) => format!(
                            "{}: {}",
                            s.code().unwrap_or("unknown"),
                            s.message().unwrap_or_default()
                        ),
                        None => format!("{e:?}"),
                    })
                })?;
            if out.failed_entry_count() > 0 {
                let codes: Vec<String> = out
                    .entries()
                    .iter()
                    .filter_map(|r| {
                        r.error_code()
                            .map(|c| format!("{c}: {}", r.error_message().unwrap_or_default()))
                    })
                    .collect();
                return Err(BusError::Backend(format!(
                    "{} of {} events were refused: {}",
                    out.failed_entry_count(),
                    chunk.len(),
                    codes.join("; ")
                )));
            }
        }
        Ok(())
    }
}
