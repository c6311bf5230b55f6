//! The export function: runs one export job at a time. It claims the job, streams the rows of
//! its kind page by page from the table through an encoder into a multipart upload, and records
//! the outcome with the row count and the totals. Memory holds one page, the encoder's buffer
//! and one upload part, whatever the size of the export.
//!
//! Messages it takes (SQS bodies): the EventBridge envelope of an `ExportRequested` event, a
//! bare `{"tenant": …, "job": …}`, or the daily schedule's `{"daily": {}}`, which creates the
//! day's exports for every tenant and queues one message per job.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

use cobro::domain::{Account, TenantId};
use cobro::export::encode::{EncodeError, Encoder};
use cobro::export::job::default_zone;
use cobro::export::rows::{self, Cell};
use cobro::export::{
    Aging, ExportJob, ExportRequest, Format, JobStatus, Kind, PaymentTime, Period, Totals,
};
use cobro::ports::blobs::{LargeBlobs, Upload};
use cobro::ports::{BlobError, Clock, Outgoing, Queue, QueueError};
use cobro::repo::{ExportClaim, LedgerEntry, RepoError, Store};

pub use cobro::export::job::{JobRef, EXPORT_REQUESTED};

/// A run that failed this many times is marked failed instead of being retried.
pub const MAX_TRIES: u32 = 3;
/// Encoded bytes are handed to the upload in pieces of about this size.
const FLUSH_AT: usize = 1 << 20;
/// Items per table page.
const PAGE: u32 = 500;

/// What the daily schedule exports for each tenant: yesterday, in the tenant's zone.
pub const DAILY: [(Kind, Format); 3] = [
    (Kind::Payments, Format::Csv),
    (Kind::Contacts, Format::Csv),
    (Kind::Aging, Format::Csv),
];

pub struct Exporter {
    pub store: Store,
    pub files: Arc<dyn LargeBlobs>,
    /// The export queue itself: the daily run queues its jobs there.
    pub jobs: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Where XLSX keeps its rows until the workbook is written.
    pub tempdir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exported {
        rows: u64,
        bytes: u64,
    },
    /// Done or failed before: a repeated message.
    AlreadyFinished,
    /// Given up after `MAX_TRIES`; the job says why.
    Failed(String),
    /// Another run lost its claim to a takeover; that run's result stands.
    Superseded,
    /// No such job (its message outlived it): nothing to do.
    Missing,
    /// The daily run: jobs created or found still queued, and queued.
    Scheduled {
        jobs: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("another worker is running this export")]
    Busy,
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("file store: {0}")]
    Files(#[from] BlobError),
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    Envelope {
        #[serde(rename = "detail-type")]
        detail_type: String,
        detail: JobRef,
    },
    Job(JobRef),
    Daily {
        daily: Daily,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Daily {
    /// The day to export; default: yesterday in each tenant's zone.
    #[serde(default)]
    date: Option<Date>,
}

impl Exporter {
    pub async fn handle(&self, body: &str) -> Result<Outcome, ExportError> {
        let message: Message =
            serde_json::from_str(body).map_err(|e| ExportError::Invalid(e.to_string()))?;
        match message {
            Message::Envelope {
                detail_type,
                detail,
            } if detail_type == EXPORT_REQUESTED => self.run(&detail.tenant, &detail.job).await,
            Message::Envelope { detail_type, .. } => Err(ExportError::Invalid(format!(
                "unexpected detail-type `{detail_type}`"
            ))),
            Message::Job(r) => self.run(&r.tenant, &r.job).await,
            Message::Daily { daily } => self.daily(daily.date).await,
        }
    }

    /// Creates the day's exports of every tenant (ids `daily-<date>-<kind>`, so a repeated
    /// schedule event creates nothing new) and queues those not finished.
    pub async fn daily(&self, date: Option<Date>) -> Result<Outcome, ExportError> {
        let now = self.clock.now();
        let mut messages = Vec::new();
        for tenant in self.store.tenants().await? {
            let zone = default_zone(&tenant.country);
            let day = match date {
                Some(d) => d,
                None => now
                    .to_zoned(zone.tz())
                    .date()
                    .yesterday()
                    .map_err(|e| ExportError::Invalid(e.to_string()))?,
            };
            for (kind, format) in DAILY {
                let id = format!("daily-{day}-{}", kind.as_str());
                let request = ExportRequest {
                    kind,
                    period: Period { from: day, to: day },
                    format,
                    time_zone: Some(zone.clone()),
                    id: Some(id.clone()),
                };
                let mut job = ExportJob::new(
                    tenant.id.clone(),
                    id,
                    &request,
                    zone.clone(),
                    now,
                    "schedule",
                );
                // The daily feed takes what was recorded that day, so a payment reported after
                // its day's file was built (with that day's `paid_at`) is in the next file.
                if kind == Kind::Payments {
                    job.payments_by = PaymentTime::RecordedAt;
                }
                let (job, _) = self.store.create_export_job(&job).await?;
                if job.status == JobStatus::Queued {
                    let body = serde_json::to_string(&JobRef {
                        tenant: job.tenant.clone(),
                        job: job.id.clone(),
                    })
                    .expect("serializes");
                    messages.push(Outgoing::new(job.id.clone(), body));
                }
            }
        }
        let jobs = messages.len();
        cobro::ports::queue::send_all(self.jobs.as_ref(), messages).await?;
        Ok(Outcome::Scheduled { jobs })
    }

    /// Runs one job, once: a job finished before is left alone, one running elsewhere is
    /// retried later (`Busy`), one whose worker died is taken over after its lease.
    pub async fn run(&self, t: &TenantId, id: &str) -> Result<Outcome, ExportError> {
        let (mut job, claimed_ms) =
            match self.store.claim_export_job(t, id, self.clock.now()).await? {
                ExportClaim::Missing => return Ok(Outcome::Missing),
                ExportClaim::Finished(_) => return Ok(Outcome::AlreadyFinished),
                ExportClaim::Busy => return Err(ExportError::Busy),
                ExportClaim::Claimed { job, claimed_ms } => (job, claimed_ms),
            };
        let started = std::time::Instant::now();
        match self.export(&job).await {
            Ok(written) => {
                job.status = JobStatus::Done;
                job.rows = written.rows;
                job.bytes = written.bytes;
                job.totals = written.totals.to_map();
                job.error = None;
                if !self
                    .store
                    .end_export_job(&job, claimed_ms, self.clock.now())
                    .await?
                {
                    return Ok(Outcome::Superseded);
                }
                tracing::info!(tenant = %t, job = id, kind = job.kind.as_str(), rows = job.rows, bytes = job.bytes, ms = started.elapsed().as_millis() as u64, "export done");
                Ok(Outcome::Exported {
                    rows: job.rows,
                    bytes: job.bytes,
                })
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(tenant = %t, job = id, tries = job.tries, error = %reason, "export failed");
                // Given up, or put back in the queue's hands for another try.
                let give_up = job.tries >= MAX_TRIES || matches!(e, ExportError::Invalid(_));
                job.status = if give_up {
                    JobStatus::Failed
                } else {
                    JobStatus::Queued
                };
                job.error = Some(reason.clone());
                self.store
                    .end_export_job(&job, claimed_ms, self.clock.now())
                    .await?;
                if give_up {
                    Ok(Outcome::Failed(reason))
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn export(&self, job: &ExportJob) -> Result<Written, ExportError> {
        let columns = rows::columns(job.kind);
        let encoder = Encoder::new(job.format, columns, &self.tempdir)?;
        let upload = self
            .files
            .start_upload(&job.object_key, job.format.content_type())
            .await?;
        let mut sink = Sink {
            columns,
            encoder: Some(encoder),
            upload: Some(upload),
            totals: Totals::default(),
            rows: 0,
        };
        let streamed = self.stream(job, &mut sink).await;
        match streamed {
            Ok(()) => sink.finish().await,
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }

    async fn stream(&self, job: &ExportJob, sink: &mut Sink) -> Result<(), ExportError> {
        let tz = job.time_zone.tz();
        let (start, end) = job.period.bounds(&tz);
        let t = &job.tenant;
        match job.kind {
            Kind::Payments => {
                let mut payments = Payments::new(&self.store, t, job.payments_by, start, end);
                while let Some(page) = payments.next_page().await? {
                    for entry in &page {
                        let row = match entry {
                            LedgerEntry::Payment {
                                payment,
                                recorded_at,
                            } => rows::payment_row(payment, *recorded_at, &tz),
                            LedgerEntry::Credit(c) => rows::credit_row(c, &tz),
                        };
                        sink.row(row).await?;
                    }
                }
            }
            Kind::Accounts => {
                let as_of = self.as_of(job, &tz);
                let mut accounts = Accounts::new(&self.store, t);
                while let Some(a) = accounts.next().await? {
                    sink.row(rows::account_row(&a, as_of)).await?;
                }
            }
            Kind::Aging => {
                let as_of = self.as_of(job, &tz);
                // Balances at the end of `as_of`: what payments took off since goes back on.
                let since = as_of
                    .tomorrow()
                    .ok()
                    .and_then(|d| d.to_zoned(tz.clone()).ok())
                    .map(|z| z.timestamp());
                let (paid_since, interest_since) = match since {
                    Some(since) => (
                        self.applied_since(t, since).await?,
                        self.interest_since(t, since).await?,
                    ),
                    None => Default::default(),
                };
                let mut aging = Aging::default();
                let mut accounts = Accounts::new(&self.store, t);
                while let Some(a) = accounts.next().await? {
                    let paid = paid_since.get(&a.id).copied().unwrap_or(0);
                    let interest = interest_since.get(&a.id).copied().unwrap_or(0);
                    aging.add(&a, as_of, paid, interest);
                }
                for row in aging.rows(as_of) {
                    sink.row(row).await?;
                }
            }
            Kind::Plans => {
                let mut accounts = Accounts::new(&self.store, t);
                while let Some(a) = accounts.next().await? {
                    for plan in self.store.plans_of_account(t, &a.id).await? {
                        if plan.accepted_at >= start && plan.accepted_at < end {
                            sink.row(rows::plan_row(&plan, &tz)).await?;
                        }
                    }
                }
            }
            Kind::Contacts => {
                let (from_ms, until_ms) = (start.as_millisecond(), end.as_millisecond());
                let mut accounts = Accounts::new(&self.store, t);
                while let Some(a) = accounts.next().await? {
                    // One account's contacts, merged in time order: a few hundred at most.
                    let mut rows: Vec<(Timestamp, Vec<Cell>)> = Vec::new();
                    for at in self.store.attempts_of_account(t, &a.id).await? {
                        if at.decided_at >= start && at.decided_at < end {
                            rows.push((at.decided_at, rows::attempt_row(&at, &tz)));
                        }
                    }
                    for d in self
                        .store
                        .decisions_between(t, &a.id, from_ms, until_ms)
                        .await?
                    {
                        rows.push((d.at, rows::decision_row(&a, &d, &tz)));
                    }
                    rows.sort_by_key(|(at, _)| *at);
                    for (_, row) in rows {
                        sink.row(row).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Days past due are counted on the period's last day, or today if that is later.
    /// What payments paid from `since` until now took off each account's balance (what they
    /// applied, and what a settlement they completed forgave). One read of
    /// the payment index, not one per account; it holds only the accounts paid since (for the
    /// usual as-of day, yesterday or the end of last month: a small part of the portfolio).
    async fn applied_since(
        &self,
        t: &TenantId,
        since: Timestamp,
    ) -> Result<std::collections::HashMap<cobro::domain::AccountId, i64>, ExportError> {
        let mut out = std::collections::HashMap::new();
        let now = self.clock.now() + jiff::SignedDuration::from_millis(1);
        let mut payments = Payments::new(&self.store, t, PaymentTime::PaidAt, since, now);
        while let Some(page) = payments.next_page().await? {
            for entry in page {
                // A credit move came with the CRM's change of the balance, which is not
                // undone either: put back alone, it would age a charge that came after.
                let LedgerEntry::Payment { payment: p, .. } = entry else {
                    continue;
                };
                *out.entry(p.account).or_insert(0) += p.applied_minor + p.forgiven_minor;
            }
        }
        Ok(out)
    }

    /// Per account, the interest plans added to its balance from `since` on, net of what
    /// plans ending unpaid took back off: from the plan index, so only plans that changed.
    async fn interest_since(
        &self,
        t: &TenantId,
        since: Timestamp,
    ) -> Result<std::collections::HashMap<cobro::domain::AccountId, i64>, ExportError> {
        let mut out = std::collections::HashMap::new();
        for plan in self
            .store
            .plans_changed_since(t, since, self.clock.now())
            .await?
        {
            *out.entry(plan.account.clone()).or_insert(0) += plan.interest_added_since(since);
        }
        Ok(out)
    }

    fn as_of(&self, job: &ExportJob, tz: &TimeZone) -> Date {
        let today = self.clock.now().to_zoned(tz.clone()).date();
        job.period.to.min(today)
    }
}

pub use cobro::repo::keys::months;

/// The tenant's payments paid (or recorded, `by`) in `[start, end)`, page by page, oldest
/// first: one range read of the payment index per UTC month.
struct Payments<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    by: PaymentTime,
    range: (i64, i64),
    /// The months still to read, the current one first.
    months: std::collections::VecDeque<String>,
    /// The last payment's sort key of the page before and that page's cursor, within the
    /// current month.
    after: Option<(String, String)>,
}

impl<'a> Payments<'a> {
    fn new(
        store: &'a Store,
        tenant: &'a TenantId,
        by: PaymentTime,
        start: Timestamp,
        end: Timestamp,
    ) -> Self {
        Self {
            store,
            tenant,
            by,
            range: (start.as_millisecond(), end.as_millisecond()),
            months: months(start, end).into(),
            after: None,
        }
    }

    /// The next page (possibly empty at a month's end); `None` when all are read.
    async fn next_page(&mut self) -> Result<Option<Vec<LedgerEntry>>, ExportError> {
        let Some(month) = self.months.front() else {
            return Ok(None);
        };
        let page = self
            .store
            .payments_page(
                self.tenant,
                self.by,
                month,
                self.range,
                PAGE,
                self.after.take(),
            )
            .await?;
        match page.next {
            Some(next) => self.after = Some(next),
            None => {
                self.months.pop_front();
            }
        }
        Ok(Some(page.entries))
    }
}

/// Every account of the tenant, debtor by debtor: the debtor directory a page at a time, then
/// each debtor's accounts (GSI1). Queries only, never a scan; one page of debtors in memory.
struct Accounts<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    /// `None` once the directory's last page was read.
    cursor: Option<Option<String>>,
    ready: std::collections::VecDeque<Account>,
}

impl<'a> Accounts<'a> {
    fn new(store: &'a Store, tenant: &'a TenantId) -> Self {
        Self {
            store,
            tenant,
            cursor: Some(None),
            ready: Default::default(),
        }
    }

    async fn next(&mut self) -> Result<Option<Account>, ExportError> {
        loop {
            if let Some(a) = self.ready.pop_front() {
                return Ok(Some(a));
            }
            let Some(cursor) = self.cursor.take() else {
                return Ok(None);
            };
            let (debtors, next) = self.store.debtor_ids(self.tenant, 100, cursor).await?;
            for d in debtors {
                self.ready
                    .extend(self.store.accounts_of_debtor(self.tenant, &d).await?);
            }
            self.cursor = next.map(Some);
        }
    }
}

struct Written {
    rows: u64,
    bytes: u64,
    totals: Totals,
}

/// Rows in, file out: the encoder's bytes go to the upload as they pile up.
struct Sink {
    columns: &'static [&'static str],
    encoder: Option<Encoder>,
    upload: Option<Box<dyn Upload>>,
    totals: Totals,
    rows: u64,
}

impl Sink {
    async fn row(&mut self, cells: Vec<Cell>) -> Result<(), ExportError> {
        let (Some(encoder), Some(upload)) = (self.encoder.as_mut(), self.upload.as_mut()) else {
            unreachable!("a sink takes rows until it finishes");
        };
        self.totals.add(self.columns, &cells);
        encoder.row(&cells)?;
        self.rows += 1;
        if encoder.buffered() >= FLUSH_AT {
            let bytes = encoder.take()?;
            upload.write(&bytes).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Written, ExportError> {
        let mut encoder = self.encoder.take().expect("not finished");
        let mut upload = self.upload.take().expect("not finished");
        let result = async {
            match encoder {
                Encoder::Xlsx(x) => write_xlsx(*x, upload.as_mut()).await?,
                _ => {
                    let bytes = encoder.take()?;
                    upload.write(&bytes).await?;
                }
            }
            Ok::<_, ExportError>(())
        }
        .await;
        if let Err(e) = result {
            let _ = upload.abort().await;
            return Err(e);
        }
        let bytes = upload.finish().await?;
        Ok(Written {
            rows: self.rows,
            bytes,
            totals: self.totals,
        })
    }

    async fn abort(mut self) {
        if let Some(upload) = self.upload.take() {
            if let Err(e) = upload.abort().await {
                tracing::warn!(error = %e, "aborting an export upload failed; the bucket's lifecycle rule cleans it up");
            }
        }
    }
}

/// The workbook is written by a blocking task into a channel of 1 MiB chunks, which this task
/// uploads: at most a few chunks are in memory at once.
async fn write_xlsx(
    x: cobro::export::encode::Xlsx,
    upload: &mut dyn Upload,
) -> Result<(), ExportError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx,
            buffer: Vec::with_capacity(FLUSH_AT),
        };
        x.save_to(&mut out)?;
        out.send()?;
        Ok::<_, EncodeError>(())
    });
    let mut upload_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = upload.write(&chunk).await {
            upload_error = Some(e);
            // Dropping the receiver makes the writer fail and stop.
            break;
        }
    }
    drop(rx);
    let written = writer
        .await
        .map_err(|e| ExportError::Encode(EncodeError::Io(std::io::Error::other(e))))?;
    if let Some(e) = upload_error {
        return Err(e.into());
    }
    written?;
    Ok(())
}

struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_AT));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= FLUSH_AT {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
