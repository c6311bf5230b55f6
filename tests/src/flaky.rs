//! A bus, a queue and a table that fail on purpose, for tests of what happens when publishing
//! or queueing fails, or a write meets a concurrent one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use cobro::ports::{
    Bus, BusError, Event, Outgoing, Queue, QueueError, Received, Table, TableError, WriteOp,
};

use crate::hooked_table::{HookedTable, Hooks};

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

/// Which transactions a `FlakyTable` cancels.
type Picks = Box<dyn Fn(&[WriteOp]) -> bool + Send + Sync>;

/// A table whose first `failures` transactions of those `refused` picks are cancelled, as a
/// concurrent write would have them (an optimistic-concurrency conflict); everything else goes
/// to the table it wraps. A cancelled transaction writes nothing.
pub type FlakyTable = HookedTable<Cancelling>;

/// The hooks of a `FlakyTable`.
pub struct Cancelling {
    failures: AtomicUsize,
    refused: Picks,
    /// How many transactions were cancelled.
    pub cancelled: AtomicUsize,
}

impl FlakyTable {
    pub fn cancelling(
        inner: Arc<dyn Table>,
        failures: usize,
        refused: impl Fn(&[WriteOp]) -> bool + Send + Sync + 'static,
    ) -> Arc<Self> {
        HookedTable::new(
            inner,
            Cancelling {
                failures: failures.into(),
                refused: Box::new(refused),
                cancelled: 0.into(),
            },
        )
    }
}

#[async_trait::async_trait]
impl Hooks for Cancelling {
    async fn transact_write(&self, inner: &dyn Table, ops: Vec<WriteOp>) -> Result<(), TableError> {
        if (self.refused)(&ops)
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
            return Err(TableError::TransactionCanceled(vec![true; ops.len()]));
        }
        inner.transact_write(ops).await
    }
}

/// Whether one of `ops` puts an item of `kind` (`account_action`, `debtor` …).
pub fn puts_kind(ops: &[WriteOp], kind: &str) -> bool {
    ops.iter().any(|op| {
        matches!(op, WriteOp::Put { item, .. }
            if item.get("kind").and_then(|k| k.as_str()) == Some(kind))
    })
}
