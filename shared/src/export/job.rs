//! An export job: what was asked (kind, period, format, zone), and how far it got
//! (queued → running → done or failed, with its row count, totals and object key).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::{DomainError, TenantId, Zone};

/// The detail type of the event that asks for a job to run; its detail is `JobRef`.
pub const EXPORT_REQUESTED: &str = "ExportRequested";

/// Which job to run: the `ExportRequested` event's detail, and the export queue's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRef {
    pub tenant: TenantId,
    pub job: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Every payment received in the period (the ledger).
    Payments,
    /// Every account with its balance now.
    Accounts,
    /// Balances owed, by currency and days-past-due bucket, as of the period's end.
    Aging,
    /// Plans accepted in the period, with their state now.
    Plans,
    /// Every contact attempt and every decision in the period (the audit trail).
    Contacts,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Payments,
        Kind::Accounts,
        Kind::Aging,
        Kind::Plans,
        Kind::Contacts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payments => "payments",
            Kind::Accounts => "accounts",
            Kind::Aging => "aging",
            Kind::Plans => "plans",
            Kind::Contacts => "contacts",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
    /// JSON Lines: one JSON object per row.
    Jsonl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Jsonl => "application/jsonl",
        }
    }
}

/// Calendar days, both included, in the export's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

/// The longest period one export covers: bounded so one job fits one Lambda run.
pub const MAX_PERIOD_DAYS: i32 = 366;

impl Period {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.to < self.from {
            return Err(DomainError::new("`to` is before `from`"));
        }
        if (self.to - self.from).get_days() >= MAX_PERIOD_DAYS {
            return Err(DomainError::new(format!(
                "a period covers at most {MAX_PERIOD_DAYS} days"
            )));
        }
        Ok(())
    }

    /// The instants the period covers in `tz`: from the first day's midnight (included) to
    /// the midnight after the last day (excluded).
    pub fn bounds(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        let start = |d: Date| {
            d.to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::MAX)
        };
        let after = self.to.tomorrow().map(start).unwrap_or(Timestamp::MAX);
        (start(self.from), after)
    }
}

/// Which of a payment's times puts it in a `payments` export's period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTime {
    /// When it was paid, as reported: the ledger of a period.
    #[default]
    PaidAt,
    /// When cobro recorded it: the daily feed, where a payment reported late (with an earlier
    /// `paid_at`) still appears once, on the day it arrived.
    RecordedAt,
}

impl PaymentTime {
    pub fn is_paid_at(&self) -> bool {
        *self == PaymentTime::PaidAt
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
}

/// What `POST /v1/exports` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub kind: Kind,
    pub period: Period,
    pub format: Format,
    /// The zone for the period's days and the `*_local` columns; default: the tenant's
    /// country's (see `default_zone`).
    #[serde(default)]
    pub time_zone: Option<Zone>,
    /// The caller's id for this export: asking again with the same id returns the same job
    /// (1 to 64 letters, digits, `-` or `_`). Default: a new id.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub tenant: TenantId,
    pub id: String,
    /// Stored as `export_kind`: `kind` names every item's type in the table.
    #[serde(rename = "export_kind")]
    pub kind: Kind,
    pub format: Format,
    pub period: Period,
    pub time_zone: Zone,
    /// `payments`: selected by `paid_at` (the default, not shown) or by `recorded_at` (the
    /// daily feed).
    #[serde(default, skip_serializing_if = "PaymentTime::is_paid_at")]
    pub payments_by: PaymentTime,
    pub status: JobStatus,
    pub requested_at: Timestamp,
    /// `api` or `schedule`.
    pub requested_by: String,
    /// When the running worker took it: another may take it over once this is old.
    #[serde(default)]
    pub claimed_at: Option<Timestamp>,
    #[serde(default)]
    pub tries: u32,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub bytes: u64,
    /// Per currency, per amount column: the column's sum as a decimal string.
    #[serde(default)]
    pub totals: BTreeMap<String, BTreeMap<String, String>>,
    pub object_key: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl ExportJob {
    pub fn new(
        tenant: TenantId,
        id: String,
        request: &ExportRequest,
        time_zone: Zone,
        requested_at: Timestamp,
        requested_by: &str,
    ) -> Self {
        let object_key = object_key(&tenant, &id, request.kind, request.format, &request.period);
        Self {
            tenant,
            id,
            kind: request.kind,
            format: request.format,
            period: request.period,
            time_zone,
            payments_by: PaymentTime::PaidAt,
            status: JobStatus::Queued,
            requested_at,
            requested_by: requested_by.into(),
            claimed_at: None,
            tries: 0,
            finished_at: None,
            rows: 0,
            bytes: 0,
            totals: BTreeMap::new(),
            object_key,
            error: None,
        }
    }
}

pub const MAX_JOB_ID_LEN: usize = 64;

pub fn check_job_id(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_JOB_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::new(format!(
            "an export id has 1 to {MAX_JOB_ID_LEN} letters, digits, `-` or `_`"
        )))
    }
}

/// Where the file goes: one object per job, so a rerun of the job overwrites its own file.
/// Tenant ids may hold `:` and `@`, which object keys here do not: they are escaped as `=XX`.
pub fn object_key(t: &TenantId, id: &str, kind: Kind, format: Format, period: &Period) -> String {
    let mut tenant = String::new();
    for c in t.as_str().chars() {
        match c {
            ':' => tenant.push_str("=3A"),
            '@' => tenant.push_str("=40"),
            c => tenant.push(c),
        }
    }
    format!(
        "exports/{tenant}/{id}/{}-{}-{}.{}",
        kind.as_str(),
        period.from,
        period.to,
        format.extension()
    )
}

/// The zone of a tenant's country when the request names none: the zone of its capital,
/// which is what its finance team reports in. UTC for a country not listed.
pub fn default_zone(country: &str) -> Zone {
    let name = match country {
        "AR" => "America/Argentina/Buenos_Aires",
        "BO" => "America/La_Paz",
        "BR" => "America/Sao_Paulo",
        "CL" => "America/Santiago",
        "CO" => "America/Bogota",
        "CR" => "America/Costa_Rica",
        "DO" => "America/Santo_Domingo",
        "EC" => "America/Guayaquil",
        "ES" => "Europe/Madrid",
        "GB" => "Europe/London",
        "GT" => "America/Guatemala",
        "HN" => "America/Tegucigalpa",
        "MX" => "America/Mexico_City",
        "NI" => "America/Managua",
        "PA" => "America/Panama",
        "PE" => "America/Lima",
        "PT" => "Europe/Lisbon",
        "PY" => "America/Asuncion",
        "US" => "America/New_York",
        "UY" => "America/Montevideo",
        "VE" => "America/Caracas",
        _ => "UTC",
    };
    Zone::parse(name).expect("listed zones are in the bundled database")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_covers_whole_local_days() {
        let p = Period {
            from: "2026-03-01".parse().unwrap(),
            to: "2026-03-31".parse().unwrap(),
        };
        let (a, b) = p.bounds(&default_zone("CL").tz());
        // Santiago is UTC−3 in March (summer time).
        assert_eq!(a.to_string(), "2026-03-01T03:00:00Z");
        assert_eq!(b.to_string(), "2026-04-01T03:00:00Z");
        let (a, b) = p.bounds(&TimeZone::UTC);
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2026-03-01T00:00:00Z".into(), "2026-04-01T00:00:00Z".into())
        );
        assert!(Period {
            from: p.to,
            to: p.from
        }
        .validate()
        .is_err());
        // 366 days (both ends included) is the most; 367 is refused.
        let year = Period {
            from: "2025-01-01".parse().unwrap(),
            to: "2026-01-01".parse().unwrap(),
        };
        assert!(year.validate().is_ok());
        let long = Period {
            from: "2025-01-01".parse().unwrap(),
            to: "2026-01-02".parse().unwrap(),
        };
        assert!(long.validate().is_err());
        assert!(p.validate().is_ok());
    }

    #[test]
    fn object_keys_are_valid_blob_keys() {
        let t = TenantId::parse("bank:cl@1").unwrap();
        let p = Period {
            from: "2026-03-01".parse().unwrap(),
            to: "2026-03-31".parse().unwrap(),
        };
        let key = object_key(&t, "job-1", Kind::Payments, Format::Csv, &p);
        assert_eq!(
            key,
            "exports/bank=3Acl=401/job-1/payments-2026-03-01-2026-03-31.csv"
        );
        assert!(crate::ports::blobs::check_key(&key).is_ok());
        assert!(check_job_id("daily-2026-03-01-payments").is_ok());
        assert!(check_job_id("a/b").is_err());
        assert!(check_job_id("").is_err());
        for country in ["AR", "BR", "CL", "CO", "MX", "PE", "ES", "XX"] {
            default_zone(country);
        }
    }
}
