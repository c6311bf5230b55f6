//! `Table`: the small, typed subset of DynamoDB that cobro uses.
//!
//! Items are JSON objects whose top-level attributes map one to one onto DynamoDB attributes
//! (string → S, integer → N, bool → BOOL, null → NULL, array → L, object → M). Conditions and
//! updates are Rust values, never expression strings, so the SQLite adapter evaluates them
//! directly and the DynamoDB adapter turns them into expressions.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// One stored item: top-level attribute name → value.
pub type Item = Map<String, Value>;

/// Partition and sort key attribute names of the base table.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// The attribute DynamoDB's TTL reads (epoch seconds). Expired items may still be read until the
/// store purges them, as on DynamoDB, so readers that care check it themselves.
pub const TTL: &str = "ttl";

/// A global secondary index: its name and the attributes that form its key. Only items that
/// carry both attributes are in it (sparse), as on DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

/// The indexes every `Table` serves. The SAM template and the CDK app declare the same.
pub const GSI1: IndexDef = IndexDef {
    name: "gsi1",
    pk: "gsi1pk",
    sk: "gsi1sk",
};
/// The sparse "due for a decision" index.
pub const DUE_INDEX: IndexDef = IndexDef {
    name: "due",
    pk: "duepk",
    sk: "duesk",
};
pub const INDEXES: [IndexDef; 2] = [GSI1, DUE_INDEX];

pub fn index_def(name: &str) -> Option<IndexDef> {
    INDEXES.iter().copied().find(|i| i.name == name)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it has string `pk` and `sk` attributes.
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key::new(item.get(PK)?.as_str()?, item.get(SK)?.as_str()?))
    }

    pub fn into_item(self) -> Item {
        let mut item = Item::new();
        item.insert(PK.into(), Value::String(self.pk));
        item.insert(SK.into(), Value::String(self.sk));
        item
    }
}

/// A condition on the current state of one item. `Exists`/`NotExists` refer to the whole item.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Exists,
    NotExists,
    AttrExists(String),
    AttrNotExists(String),
    Eq(String, Value),
    Ne(String, Value),
    Lt(String, Value),
    Le(String, Value),
    Gt(String, Value),
    Ge(String, Value),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    pub fn eq(attr: &str, v: impl Into<Value>) -> Self {
        Condition::Eq(attr.into(), v.into())
    }
    pub fn lt(attr: &str, v: impl Into<Value>) -> Self {
        Condition::Lt(attr.into(), v.into())
    }
    pub fn le(attr: &str, v: impl Into<Value>) -> Self {
        Condition::Le(attr.into(), v.into())
    }
    pub fn ge(attr: &str, v: impl Into<Value>) -> Self {
        Condition::Ge(attr.into(), v.into())
    }
    pub fn gt(attr: &str, v: impl Into<Value>) -> Self {
        Condition::Gt(attr.into(), v.into())
    }

    /// Evaluates the condition against the item as it is now (`None`: absent). This is the
    /// reference semantics: the SQLite adapter uses it directly, and the contract suite checks
    /// DynamoDB against the same cases.
    pub fn holds(&self, item: Option<&Item>) -> bool {
        let attr = |name: &str| item.and_then(|i| i.get(name));
        match self {
            Condition::Exists => item.is_some(),
            Condition::NotExists => item.is_none(),
            Condition::AttrExists(a) => attr(a).is_some(),
            Condition::AttrNotExists(a) => attr(a).is_none(),
            Condition::Eq(a, v) => attr(a) == Some(v),
            // DynamoDB: `a <> v` is true when `a` is absent.
            Condition::Ne(a, v) => attr(a) != Some(v),
            Condition::Lt(a, v) => compare(attr(a), v).is_some_and(|o| o.is_lt()),
            Condition::Le(a, v) => compare(attr(a), v).is_some_and(|o| o.is_le()),
            Condition::Gt(a, v) => compare(attr(a), v).is_some_and(|o| o.is_gt()),
            Condition::Ge(a, v) => compare(attr(a), v).is_some_and(|o| o.is_ge()),
            Condition::And(cs) => cs.iter().all(|c| c.holds(item)),
            Condition::Or(cs) => cs.iter().any(|c| c.holds(item)),
        }
    }
}

/// Ordering as DynamoDB compares: numbers numerically, strings by UTF-8 bytes; other types and
/// mixed types do not compare (the condition is false).
fn compare(a: Option<&Value>, b: &Value) -> Option<std::cmp::Ordering> {
    match (a?, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                Some(x.cmp(&y))
            } else {
                x.as_f64()?.partial_cmp(&y.as_f64()?)
            }
        }
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// One change to an item's attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Set(String, Value),
    /// Adds to a number (an absent attribute counts as 0), as DynamoDB's `ADD`.
    Add(String, i64),
    Remove(String),
}

impl Update {
    pub fn set(attr: &str, v: impl Into<Value>) -> Self {
        Update::Set(attr.into(), v.into())
    }
    pub fn add(attr: &str, n: i64) -> Self {
        Update::Add(attr.into(), n)
    }
    pub fn remove(attr: &str) -> Self {
        Update::Remove(attr.into())
    }

    /// Applies the change to an item (the reference semantics, as `Condition::holds`).
    pub fn apply(&self, item: &mut Item) -> Result<(), TableError> {
        match self {
            Update::Set(a, v) => {
                item.insert(a.clone(), v.clone());
            }
            Update::Add(a, n) => {
                let current = match item.get(a) {
                    None => 0,
                    Some(v) => v.as_i64().ok_or_else(|| {
                        TableError::Invalid(format!(
                            "ADD on attribute `{a}` that is not an integer"
                        ))
                    })?,
                };
                let sum = current.checked_add(*n).ok_or_else(|| {
                    TableError::Invalid(format!("ADD on attribute `{a}` overflows"))
                })?;
                item.insert(a.clone(), Value::from(sum));
            }
            Update::Remove(a) => {
                item.remove(a);
            }
        }
        Ok(())
    }
}

/// The sort-key part of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    Eq(String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
    Between(String, String),
    BeginsWith(String),
}

impl SkRange {
    pub fn contains(&self, sk: &str) -> bool {
        let sk = sk.as_bytes();
        match self {
            SkRange::All => true,
            SkRange::Eq(v) => sk == v.as_bytes(),
            SkRange::Lt(v) => sk < v.as_bytes(),
            SkRange::Le(v) => sk <= v.as_bytes(),
            SkRange::Gt(v) => sk > v.as_bytes(),
            SkRange::Ge(v) => sk >= v.as_bytes(),
            SkRange::Between(a, b) => sk >= a.as_bytes() && sk <= b.as_bytes(),
            SkRange::BeginsWith(p) => sk.starts_with(p.as_bytes()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `None`: the base table; `Some(name)`: one of `INDEXES`.
    pub index: Option<&'static str>,
    pub pk: String,
    pub sk: SkRange,
    /// Ascending by sort key when true.
    pub forward: bool,
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

impl Query {
    pub fn table(pk: impl Into<String>, sk: SkRange) -> Self {
        Self {
            index: None,
            pk: pk.into(),
            sk,
            forward: true,
            limit: None,
            cursor: None,
        }
    }
    pub fn index(index: IndexDef, pk: impl Into<String>, sk: SkRange) -> Self {
        Self {
            index: Some(index.name),
            ..Self::table(pk, sk)
        }
    }
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Opaque; present when there may be more items.
    pub next: Option<String>,
}

/// One operation of a transactional write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Update {
        key: Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    },
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    Check {
        key: Key,
        condition: Condition,
    },
}

impl WriteOp {
    pub fn key(&self) -> Option<Key> {
        match self {
            WriteOp::Put { item, .. } => Key::of(item),
            WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. }
            | WriteOp::Check { key, .. } => Some(key.clone()),
        }
    }
}

/// DynamoDB's limit on a transaction.
pub const MAX_TRANSACTION_OPS: usize = 100;
/// DynamoDB's limit on one BatchWriteItem; `batch_write` splits larger batches itself.
pub const MAX_BATCH_WRITE: usize = 25;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error("the condition on the item did not hold")]
    ConditionFailed,
    /// One entry per operation, in order: `true` where that operation's condition failed.
    #[error("the transaction was cancelled (failed conditions: {0:?})")]
    TransactionCanceled(Vec<bool>),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the store failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Table: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;

    /// Writes the whole item (it must carry string `pk` and `sk`).
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError>;

    /// Applies the updates (creating the item if absent, as DynamoDB does) and returns the item
    /// as it is afterwards.
    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError>;

    /// Deletes the item; returns what it was, if anything.
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError>;

    async fn query(&self, query: Query) -> Result<Page, TableError>;

    /// All or nothing. At most `MAX_TRANSACTION_OPS` operations, each on a different item.
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError>;

    /// Unconditional puts and deletes, not atomic as a whole; any size (split in chunks of 25).
    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError>;
}

/// Validation shared by the adapters, so both reject the same requests.
pub fn check_transaction(ops: &[WriteOp]) -> Result<(), TableError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(TableError::Invalid(format!(
            "a transaction takes 1 to {MAX_TRANSACTION_OPS} operations, not {}",
            ops.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let key = op
            .key()
            .ok_or_else(|| TableError::Invalid("an item without string pk and sk".into()))?;
        if !seen.insert(key.clone()) {
            return Err(TableError::Invalid(format!(
                "two operations on one item ({}, {}) in a transaction",
                key.pk, key.sk
            )));
        }
    }
    Ok(())
}

/// Key attributes cannot change: an update names an item by its key.
/// Also, as DynamoDB: at least one change, and at most one change per attribute (it refuses
/// overlapping paths where SQLite would apply them in order).
pub fn check_updates(updates: &[Update]) -> Result<(), TableError> {
    if updates.is_empty() {
        return Err(TableError::Invalid(
            "an update needs at least one change".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for u in updates {
        let (Update::Set(a, _) | Update::Add(a, _) | Update::Remove(a)) = u;
        if a == PK || a == SK {
            return Err(TableError::Invalid(format!(
                "cannot update key attribute `{a}`"
            )));
        }
        if !seen.insert(a) {
            return Err(TableError::Invalid(format!(
                "two changes to attribute `{a}` in one update"
            )));
        }
        if let Update::Set(_, v) = u {
            check_key_value(a, v)?;
        }
    }
    Ok(())
}

/// Key and index-key attributes are non-empty strings: DynamoDB refuses anything else, so the
/// embedded store must too, or a write that works locally would fail on AWS.
fn check_key_value(attr: &str, v: &Value) -> Result<(), TableError> {
    let is_key = attr == PK || attr == SK || INDEXES.iter().any(|i| i.pk == attr || i.sk == attr);
    match v {
        _ if !is_key => Ok(()),
        Value::String(s) if !s.is_empty() => Ok(()),
        _ => Err(TableError::Invalid(format!(
            "key attribute `{attr}` must be a non-empty string"
        ))),
    }
}

pub fn check_item(item: &Item) -> Result<Key, TableError> {
    let key = Key::of(item)
        .ok_or_else(|| TableError::Invalid("an item without string pk and sk".into()))?;
    for (attr, v) in item {
        check_key_value(attr, v)?;
    }
    Ok(key)
}

/// Whether an item's `ttl` has passed: readers that must not see expired items (idempotency
/// records) call this, since neither store deletes exactly on time.
pub fn is_expired(item: &Item, now_epoch_secs: i64) -> bool {
    item.get(TTL)
        .and_then(Value::as_i64)
        .is_some_and(|t| t < now_epoch_secs)
}
