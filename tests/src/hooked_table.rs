//! A table that hands every call on to another, with a test's hooks on reads, writes and
//! transactions: the one place the `Table` port is forwarded, for the test tables that count
//! reads, run transactions one at a time or cancel them, or make a write land just before
//! another.

use std::sync::Arc;

use cobro::ports::{Condition, Item, Key, Page, Query, Table, TableError, Update, WriteOp};

/// What a `Hooks::writing` holds while the write runs.
pub type WriteGuard = Option<Box<dyn Send>>;

/// What a `HookedTable` does besides passing calls on; by default, nothing.
#[async_trait::async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Called before each read (`get` or `query`).
    fn reading(&self) {}

    /// Awaited before each write (put, update, delete, transaction, batch), with the items it
    /// puts whole (none for an update or a delete); what it returns is held until the write is
    /// done (a lock, to run writes one at a time).
    async fn writing(&self, _puts: &[&Item]) -> WriteGuard {
        None
    }

    /// Runs the transaction `ops` on `inner`: by default, just that.
    async fn transact_write(&self, inner: &dyn Table, ops: Vec<WriteOp>) -> Result<(), TableError> {
        inner.transact_write(ops).await
    }
}

/// `inner` with `hooks` on its reads and transactions. Derefs to the hooks, so a test reads
/// what they counted (`table.cancelled`).
pub struct HookedTable<H> {
    inner: Arc<dyn Table>,
    hooks: H,
}

impl<H: Hooks> HookedTable<H> {
    pub fn new(inner: Arc<dyn Table>, hooks: H) -> Arc<Self> {
        Arc::new(Self { inner, hooks })
    }
}

impl<H> std::ops::Deref for HookedTable<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.hooks
    }
}

#[async_trait::async_trait]
impl<H: Hooks> Table for HookedTable<H> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.hooks.reading();
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        let _held = self.hooks.writing(&[&item]).await;
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        let _held = self.hooks.writing(&[]).await;
        self.inner.update(key, updates, condition).await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError> {
        let _held = self.hooks.writing(&[]).await;
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.hooks.reading();
        self.inner.query(query).await
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        let puts: Vec<&Item> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Put { item, .. } => Some(item),
                _ => None,
            })
            .collect();
        let _held = self.hooks.writing(&puts).await;
        self.hooks.transact_write(self.inner.as_ref(), ops).await
    }

    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError> {
        let _held = self.hooks.writing(&puts.iter().collect::<Vec<_>>()).await;
        self.inner.batch_write(puts, deletes).await
    }
}
