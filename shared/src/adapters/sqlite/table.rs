//! `Table` over SQLite: items as JSON documents, index entries maintained on every write.

use async_trait::async_trait;
use base64::Engine as _;
use rusqlite::{params, types::Value as Sql, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use super::{backend, SqliteStore};
use crate::ports::table::{
    check_item, check_transaction, check_updates, index_def, Condition, Item, Key, Page, Query,
    SkRange, Table, TableError, Update, WriteOp, INDEXES,
};

#[derive(Clone)]
pub struct SqliteTable {
    store: SqliteStore,
}

impl SqliteTable {
    pub(super) fn new(store: SqliteStore) -> Self {
        Self { store }
    }

    /// Deletes items whose `ttl` (epoch seconds) has passed, as DynamoDB's TTL sweeper does.
    pub async fn purge_expired(&self, now_epoch_secs: i64) -> Result<usize, TableError> {
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                let keys: Vec<(String, String)> = {
                    let mut stmt = tx
                        .prepare("SELECT pk, sk FROM items WHERE json_extract(doc, '$.ttl') < ?1")
                        .map_err(backend)?;
                    let rows = stmt
                        .query_map(params![now_epoch_secs], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(backend)?;
                    rows.collect::<Result<_, _>>().map_err(backend)?
                };
                for (pk, sk) in &keys {
                    delete_row(&tx, &Key::new(pk.clone(), sk.clone()))?;
                }
                tx.commit().map_err(backend)?;
                Ok(keys.len())
            })
            .await
    }
}

fn load(conn: &Connection, key: &Key) -> Result<Option<Item>, TableError> {
    let doc: Option<String> = conn
        .query_row(
            "SELECT doc FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    doc.map(|d| parse_doc(&d)).transpose()
}

fn parse_doc(doc: &str) -> Result<Item, TableError> {
    serde_json::from_str(doc).map_err(|e| TableError::Backend(format!("corrupt item: {e}")))
}

fn write_row(tx: &Transaction<'_>, item: &Item) -> Result<(), TableError> {
    let key = check_item(item)?;
    let doc = serde_json::to_string(item).map_err(|e| TableError::Invalid(e.to_string()))?;
    tx.execute(
        "INSERT INTO items (pk, sk, doc) VALUES (?1, ?2, ?3)
         ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc",
        params![key.pk, key.sk, doc],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM index_entries WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(backend)?;
    for idx in INDEXES {
        // Sparse, as a DynamoDB GSI: only items carrying both key attributes are indexed.
        if let (Some(Value::String(ipk)), Some(Value::String(isk))) =
            (item.get(idx.pk), item.get(idx.sk))
        {
            tx.execute(
                "INSERT INTO index_entries (idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![idx.name, ipk, isk, key.pk, key.sk],
            )
            .map_err(backend)?;
        }
    }
    Ok(())
}

fn delete_row(tx: &Transaction<'_>, key: &Key) -> Result<(), TableError> {
    tx.execute(
        "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM index_entries WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(backend)?;
    Ok(())
}

/// The item as it is, if the condition holds on it.
fn load_checked(
    tx: &Transaction<'_>,
    key: &Key,
    condition: &Option<Condition>,
) -> Result<Option<Item>, TableError> {
    let current = load(tx, key)?;
    if !check(condition, current.as_ref()) {
        return Err(TableError::ConditionFailed);
    }
    Ok(current)
}

fn check(condition: &Option<Condition>, current: Option<&Item>) -> bool {
    condition.as_ref().is_none_or(|c| c.holds(current))
}

fn updated(key: &Key, current: Option<Item>, updates: &[Update]) -> Result<Item, TableError> {
    check_updates(updates)?;
    let mut item = current.unwrap_or_else(|| key.clone().into_item());
    for u in updates {
        u.apply(&mut item)?;
    }
    Ok(item)
}

/// Cursor: the last returned row's sort position, opaque to callers.
fn encode_cursor(parts: &[&str]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(parts).expect("strings"))
}

fn decode_cursor(cursor: &str, len: usize) -> Result<Vec<String>, TableError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| TableError::Invalid("malformed cursor".into()))?;
    let parts: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|_| TableError::Invalid("malformed cursor".into()))?;
    if parts.len() != len {
        return Err(TableError::Invalid("cursor from another query".into()));
    }
    Ok(parts)
}

/// The SQL for a sort-key range over column `col`, appending its parameters.
fn sk_sql(col: &str, range: &SkRange, args: &mut Vec<Sql>) -> String {
    let mut arg = |v: &String| {
        args.push(Sql::Text(v.clone()));
        format!("?{}", args.len())
    };
    match range {
        SkRange::All => "1".into(),
        SkRange::Eq(v) => format!("{col} = {}", arg(v)),
        SkRange::Lt(v) => format!("{col} < {}", arg(v)),
        SkRange::Le(v) => format!("{col} <= {}", arg(v)),
        SkRange::Gt(v) => format!("{col} > {}", arg(v)),
        SkRange::Ge(v) => format!("{col} >= {}", arg(v)),
        SkRange::Between(a, b) => {
            let a = arg(a);
            format!("{col} BETWEEN {a} AND {}", arg(b))
        }
        SkRange::BeginsWith(p) => {
            let p = arg(p);
            format!("substr({col}, 1, length({p})) = {p}")
        }
    }
}

fn run_query(conn: &Connection, q: &Query) -> Result<Page, TableError> {
    if q.limit == Some(0) {
        return Err(TableError::Invalid("limit must be at least 1".into()));
    }
    let (dir, cmp) = if q.forward {
        ("ASC", ">")
    } else {
        ("DESC", "<")
    };
    let mut args: Vec<Sql> = Vec::new();
    let sql = match q.index {
        None => {
            args.push(Sql::Text(q.pk.clone()));
            let mut sql = format!(
                "SELECT doc, sk FROM items WHERE pk = ?1 AND {}",
                sk_sql("sk", &q.sk, &mut args)
            );
            if let Some(c) = &q.cursor {
                let [sk]: [String; 1] = decode_cursor(c, 1)?.try_into().expect("length checked");
                args.push(Sql::Text(sk));
                sql += &format!(" AND sk {cmp} ?{}", args.len());
            }
            sql + &format!(" ORDER BY sk {dir}")
        }
        Some(name) => {
            let idx =
                index_def(name).ok_or_else(|| TableError::Invalid(format!("no index `{name}`")))?;
            args.push(Sql::Text(idx.name.into()));
            args.push(Sql::Text(q.pk.clone()));
            let mut sql = format!(
                "SELECT i.doc, e.isk, e.pk, e.sk FROM index_entries e
                 JOIN items i ON i.pk = e.pk AND i.sk = e.sk
                 WHERE e.idx = ?1 AND e.ipk = ?2 AND {}",
                sk_sql("e.isk", &q.sk, &mut args)
            );
            if let Some(c) = &q.cursor {
                let n = args.len();
                args.extend(decode_cursor(c, 3)?.into_iter().map(Sql::Text));
                sql += &format!(
                    " AND (e.isk, e.pk, e.sk) {cmp} (?{}, ?{}, ?{})",
                    n + 1,
                    n + 2,
                    n + 3
                );
            }
            sql + &format!(" ORDER BY e.isk {dir}, e.pk {dir}, e.sk {dir}")
        }
    };
    let sql = match q.limit {
        // One row more than asked tells whether another page exists.
        Some(n) => format!("{sql} LIMIT {}", u64::from(n) + 1),
        None => sql,
    };
    let mut stmt = conn.prepare(&sql).map_err(backend)?;
    let width = if q.index.is_some() { 3 } else { 1 };
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(backend)?;
    let mut page = Page::default();
    let mut last: Vec<String> = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        if q.limit
            .is_some_and(|n| page.items.len() as u64 == u64::from(n))
        {
            let parts: Vec<&str> = last.iter().map(String::as_str).collect();
            page.next = Some(encode_cursor(&parts));
            break;
        }
        let doc: String = row.get(0).map_err(backend)?;
        page.items.push(parse_doc(&doc)?);
        last = (1..=width)
            .map(|i| row.get::<_, String>(i))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
    }
    Ok(page)
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let key = key.clone();
        self.store.with(move |conn| load(conn, &key)).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        let key = check_item(&item)?;
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                load_checked(&tx, &key, &condition)?;
                write_row(&tx, &item)?;
                tx.commit().map_err(backend)
            })
            .await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        let key = key.clone();
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                let current = load_checked(&tx, &key, &condition)?;
                let item = updated(&key, current, &updates)?;
                write_row(&tx, &item)?;
                tx.commit().map_err(backend)?;
                Ok(item)
            })
            .await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, TableError> {
        let key = key.clone();
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                let current = load_checked(&tx, &key, &condition)?;
                delete_row(&tx, &key)?;
                tx.commit().map_err(backend)?;
                Ok(current)
            })
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.store.with(move |conn| run_query(conn, &query)).await
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        check_transaction(&ops)?;
        for op in &ops {
            if let WriteOp::Put { item, .. } = op {
                check_item(item)?;
            }
        }
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                let mut failed = Vec::with_capacity(ops.len());
                let mut writes: Vec<Result<Item, Key>> = Vec::new();
                for op in &ops {
                    let key = op.key().expect("checked");
                    let current = load(&tx, &key)?;
                    let cond = match op {
                        WriteOp::Put { condition, .. }
                        | WriteOp::Update { condition, .. }
                        | WriteOp::Delete { condition, .. } => condition.clone(),
                        WriteOp::Check { condition, .. } => Some(condition.clone()),
                    };
                    failed.push(!check(&cond, current.as_ref()));
                    match op {
                        WriteOp::Put { item, .. } => writes.push(Ok(item.clone())),
                        WriteOp::Update { updates, .. } => {
                            writes.push(Ok(updated(&key, current, updates)?))
                        }
                        WriteOp::Delete { .. } => writes.push(Err(key)),
                        WriteOp::Check { .. } => {}
                    }
                }
                if failed.iter().any(|f| *f) {
                    return Err(TableError::TransactionCanceled(failed));
                }
                for w in writes {
                    match w {
                        Ok(item) => write_row(&tx, &item)?,
                        Err(key) => delete_row(&tx, &key)?,
                    }
                }
                tx.commit().map_err(backend)
            })
            .await
    }

    async fn batch_write(&self, puts: Vec<Item>, deletes: Vec<Key>) -> Result<(), TableError> {
        for item in &puts {
            check_item(item)?;
        }
        self.store
            .with(move |conn| {
                let tx = conn.transaction().map_err(backend)?;
                for item in &puts {
                    write_row(&tx, item)?;
                }
                for key in &deletes {
                    delete_row(&tx, key)?;
                }
                tx.commit().map_err(backend)
            })
            .await
    }
}
