//! `Queue` over SQLite with SQS's semantics: visibility timeout, receive count, redrive to a
//! dead-letter queue once a message was received more than `max_receives` times.

use async_trait::async_trait;
use rusqlite::{params, Connection};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::SqliteStore;
use crate::ports::queue::{check_batch, Outgoing, Queue, QueueError, Received};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub dead_letter_queue: String,
    pub max_receives: u32,
}

#[derive(Clone)]
pub struct SqliteQueue {
    store: SqliteStore,
    name: String,
    redrive: Option<Redrive>,
}

fn backend(e: rusqlite::Error) -> QueueError {
    QueueError::Backend(format!("SQLite: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl SqliteQueue {
    pub(super) fn new(store: SqliteStore, name: &str, redrive: Option<Redrive>) -> Self {
        Self {
            store,
            name: name.to_string(),
            redrive,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages in the queue, visible or not: for the local stack's status page and tests.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let name = self.name.clone();
        self.store
            .with(move |conn: &mut Connection| {
                conn.query_row(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                    params![name],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(backend)
            })
            .await
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        check_batch(&messages)?;
        let name = self.name.clone();
        self.store
            .with(move |conn: &mut Connection| {
                let tx = conn.transaction().map_err(backend)?;
                let now = now_ms();
                for m in &messages {
                    tx.execute(
                        "INSERT INTO queue_messages (queue, message_id, body, visible_at_ms)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![
                            name,
                            uuid::Uuid::new_v4().to_string(),
                            m.body,
                            now + m.delay.as_millis() as i64
                        ],
                    )
                    .map_err(backend)?;
                }
                tx.commit().map_err(backend)
            })
            .await
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if !(1..=10).contains(&max) {
            return Err(QueueError::Invalid(format!(
                "receive takes 1 to 10 messages, not {max}"
            )));
        }
        let name = self.name.clone();
        let redrive = self.redrive.clone();
        self.store
            .with(move |conn: &mut Connection| {
                let tx = conn.transaction().map_err(backend)?;
                let now = now_ms();
                let mut out = Vec::new();
                loop {
                    let candidates: Vec<(i64, String, String, u32)> = {
                        let mut stmt = tx
                            .prepare(
                                "SELECT seq, message_id, body, receive_count FROM queue_messages
                                 WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
                            )
                            .map_err(backend)?;
                        let rows = stmt
                            .query_map(params![name, now, max - out.len() as u32], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                            })
                            .map_err(backend)?;
                        rows.collect::<Result<_, _>>().map_err(backend)?
                    };
                    if candidates.is_empty() {
                        break;
                    }
                    for (seq, message_id, body, count) in candidates {
                        if let Some(r) = redrive.as_ref().filter(|r| count >= r.max_receives) {
                            // Received too often without being deleted: a poison message.
                            tx.execute(
                                "UPDATE queue_messages SET queue = ?1, receive_count = 0,
                                 receipt = NULL, visible_at_ms = ?2 WHERE seq = ?3",
                                params![r.dead_letter_queue, now, seq],
                            )
                            .map_err(backend)?;
                            continue;
                        }
                        let receipt = uuid::Uuid::new_v4().to_string();
                        let visible_at = now + visibility.as_millis() as i64;
                        tx.execute(
                            "UPDATE queue_messages SET receive_count = receive_count + 1,
                             receipt = ?1, visible_at_ms = ?2 WHERE seq = ?3",
                            params![receipt, visible_at, seq],
                        )
                        .map_err(backend)?;
                        out.push(Received {
                            message_id,
                            receipt,
                            body,
                            receive_count: count + 1,
                        });
                    }
                    if out.len() as u32 >= max {
                        break;
                    }
                }
                tx.commit().map_err(backend)?;
                Ok(out)
            })
            .await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_string();
        self.store
            .with(move |conn: &mut Connection| {
                conn.execute(
                    "DELETE FROM queue_messages WHERE receipt = ?1",
                    params![receipt],
                )
                .map(|_| ())
                .map_err(backend)
            })
            .await
    }
}
