//! Decorators that count the requests a port makes: what a reminder costs in DynamoDB and SQS
//! requests, measured on the real adapters against moto.

use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cobro::ports::table::{Item, Key, Page, Query, WriteOp};
use cobro::ports::{Condition, Outgoing, Queue, QueueError, Received, Table, TableError, Update};

#[derive(Default, Debug)]
pub struct Counts {
    pub get: AtomicU64,
    pub put: AtomicU64,
    pub update: AtomicU64,
    pub delete: AtomicU64,
    pub query: AtomicU64,
    pub transact: AtomicU64,
    pub batch: AtomicU64,
    pub sqs_send: AtomicU64,
}

impl Counts {
    pub fn reads(&self) -> u64 {
        self.get.load(Ordering::Relaxed) + self.query.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.put.load(Ordering::Relaxed)
            + self.update.load(Ordering::Relaxed)
            + self.delete.load(Ordering::Relaxed)
            + self.transact.load(Ordering::Relaxed)
            + self.batch.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for c in [
            &self.get,
            &self.put,
            &self.update,
            &self.delete,
            &self.query,
            &self.transact,
            &self.batch,
            &self.sqs_send,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub struct CountingTable {
    pub inner: Arc<dyn Table>,
    pub counts: Arc<Counts>,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl Table for CountingTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        bump(&self.counts.get);
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        bump(&self.counts.put);
        self.inner.put(item, condition).await
    }
    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        bump(&self.counts.update);
        self.inner.update(key, updates, condition).await
    }
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError> {
        bump(&self.counts.delete);
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> Result<Page, TableError> {
        bump(&self.counts.query);
        self.inner.query(query).await
    }
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        bump(&self.counts.transact);
        self.inner.transact_write(ops).await
    }
    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError> {
        // One request per 25 items, as the adapter splits them.
        let n = (puts.len() + deletes.len()).div_ceil(25) as u64;
        self.counts.batch.fetch_add(n, Ordering::Relaxed);
        self.inner.batch_write(puts, deletes).await
    }
}

pub struct CountingQueue {
    pub inner: Arc<dyn Queue>,
    pub counts: Arc<Counts>,
}

#[async_trait]
impl Queue for CountingQueue {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        bump(&self.counts.sqs_send);
        self.inner.send_batch(messages).await
    }
    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, visibility).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
}
