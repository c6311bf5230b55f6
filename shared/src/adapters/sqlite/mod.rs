//! The embedded store: one SQLite file holds the table and the queues, so the local stack needs
//! no AWS account and no server. Semantics follow DynamoDB and SQS; the contract suites in
//! `tests/` check both adapters against the same cases.

mod queue;
mod table;

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use queue::{Redrive, SqliteQueue};
pub use table::SqliteTable;

use crate::ports::TableError;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS items (
    pk  TEXT NOT NULL,
    sk  TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_entries (
    idx TEXT NOT NULL,
    ipk TEXT NOT NULL,
    isk TEXT NOT NULL,
    pk  TEXT NOT NULL,
    sk  TEXT NOT NULL,
    PRIMARY KEY (idx, ipk, isk, pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS index_entries_by_item ON index_entries (pk, sk);
CREATE TABLE IF NOT EXISTS queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (queue, visible_at_ms, seq);
";

/// One SQLite database shared by the table and the queues of a local stack.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, TableError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TableError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path).map_err(backend)?)
    }

    pub fn open_in_memory() -> Result<Self, TableError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> Result<Self, TableError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn table(&self) -> SqliteTable {
        SqliteTable::new(self.clone())
    }

    pub fn queue(&self, name: &str, redrive: Option<Redrive>) -> SqliteQueue {
        SqliteQueue::new(self.clone(), name, redrive)
    }

    /// Runs blocking SQLite work off the async runtime's worker threads.
    async fn with<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<JoinFailure>,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(JoinFailure(e.to_string())))?
    }
}

/// A blocking task that panicked or was cancelled.
pub struct JoinFailure(String);

impl From<JoinFailure> for TableError {
    fn from(e: JoinFailure) -> Self {
        TableError::Backend(format!("SQLite task failed: {}", e.0))
    }
}

impl From<JoinFailure> for crate::ports::QueueError {
    fn from(e: JoinFailure) -> Self {
        crate::ports::QueueError::Backend(format!("SQLite task failed: {}", e.0))
    }
}

fn backend(e: rusqlite::Error) -> TableError {
    TableError::Backend(format!("SQLite: {e}"))
}
