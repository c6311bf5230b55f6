//! A bus, a queue and a table that fail on purpose, for tests of what happens when publishing
//! or queueing fails, or a write meets a concurrent one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use cobro::ports::{
    Bus, BusError, Condition, Event, Item, Key, Outgoing, Page, Query, Queue, QueueError, Received,
    Table, TableError, Update, WriteOp,
};

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
/// to `inner`. A cancelled transaction writes nothing.
pub struct FlakyTable {
    inner: Arc<dyn Table>,
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
        Arc::new(Self {
            inner,
            failures: failures.into(),
            refused: Box::new(refused),
            cancelled: 0.into(),
        })
    }
}

/// Whether one of `ops` puts an item of `kind` (`account_action`, `debtor` …).
pub fn puts_kind(ops: &[WriteOp], kind: &str) -> bool {
    ops.iter().any(|op| {
        matches!(op, WriteOp::Put { item, .. }
            if item.get("kind").and_then(|k| k.as_str()) == Some(kind))
    })
}

#[async_trait::async_trait]
impl Table for FlakyTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        self.inner.update(key, updates, condition).await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError> {
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.inner.query(query).await
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        if (self.refused)(&ops)
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
            return Err(TableError::TransactionCanceled(vec![true; ops.len()]));
        }
        self.inner.transact_write(ops).await
    }

    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError> {
        self.inner.batch_write(puts, deletes).await
    }
}
