//! A bus and a queue that fail on purpose, for tests of what happens when publishing or
//! queueing fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use cobro::ports::{Bus, BusError, Event, Outgoing, Queue, QueueError, Received};

/// Refuses its first `failures` publishes (of those with an event `refused` picks), then passes
/// them on to `inner`. It counts the calls and keeps every event it passed on.
pub struct FlakyBus {
    inner: Arc<dyn Bus>,
    failures: AtomicUsize,
    refused: Box<dyn Fn(&Event) -> bool + Send + Sync>,
    pub calls: AtomicUsize,
    published: Mutex<Vec<Event>>,
}

impl FlakyBus {
    pub fn new(inner: Arc<dyn Bus>, failures: usize) -> Arc<Self> {
        Self::refusing(inner, failures, |_| true)
    }

    /// Refuses only publishes with an event `refused` picks.
    pub fn refusing(
        inner: Arc<dyn Bus>,
        failures: usize,
        refused: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failures: failures.into(),
            refused: Box::new(refused),
            calls: 0.into(),
            published: Mutex::new(Vec::new()),
        })
    }

    /// The events passed on so far, taken.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.published.lock().expect("not poisoned"))
    }
}

#[async_trait::async_trait]
impl Bus for FlakyBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if events.iter().any(&self.refused)
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(BusError::Backend("throttled".into()));
        }
        self.inner.publish(events.clone()).await?;
        self.published.lock().expect("not poisoned").extend(events);
        Ok(())
    }
}

/// Refuses its first `failures` sends, then passes them on to `inner`.
pub struct FlakyQueue {
    inner: Arc<dyn Queue>,
    failures: AtomicUsize,
}

impl FlakyQueue {
    pub fn new(inner: Arc<dyn Queue>, failures: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failures: failures.into(),
        })
    }
}

#[async_trait::async_trait]
impl Queue for FlakyQueue {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(QueueError::Backend("throttled".into()));
        }
        self.inner.send_batch(messages).await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
}
