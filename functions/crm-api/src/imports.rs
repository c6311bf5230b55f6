//! Bulk import of a portfolio: `POST /v1/imports` with NDJSON (`application/x-ndjson`, one
//! object a line) or CSV (`text/csv`, a header line). One row is a debtor and one of their
//! accounts. Up to 10,000 rows a request. Every row is checked first; the good rows are then
//! written, each debtor and account in one transaction (a row is wholly applied or not at all),
//! idempotent on the CRM's ids; bad rows are not written, and the report names each with its
//! field.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

use cobro::domain::{
    Account, AccountId, AccountStatus, ChannelKind, Consent, Currency, Debtor, DebtorId, Language,
    Phone, Zone,
};
use cobro::http::Problem;

use crate::{Caller, CrmApi};

pub const MAX_ROWS: usize = 10_000;
/// Rows written at once: enough to finish 10,000 rows within an API Gateway request.
const IN_FLIGHT: usize = 16;

/// One row: a debtor and one of their accounts. CSV columns carry the same names.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    pub debtor_id: String,
    pub name: String,
    /// E.164, `+` then digits.
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
    /// IANA time zone, e.g. `America/Santiago`.
    pub time_zone: String,
    /// `es` (default), `pt` or `en`.
    #[serde(default)]
    pub language: Option<String>,
    /// Consent to be contacted on WhatsApp, as the CRM recorded it.
    #[serde(default)]
    pub whatsapp_consent: Option<bool>,
    #[serde(default)]
    pub sms_consent: Option<bool>,
    #[serde(default)]
    pub email_consent: Option<bool>,
    pub account_id: String,
    /// ISO 4217.
    pub currency: String,
    pub principal_minor: i64,
    pub balance_minor: i64,
    /// `YYYY-MM-DD`.
    pub due_date: String,
    #[serde(default)]
    pub product: Option<String>,
    /// Who is owed, when it is not the tenant (required of an agency).
    #[serde(default)]
    pub creditor: Option<String>,
    /// Labels, separated by `;`.
    #[serde(default)]
    pub tags: Option<String>,
}

/// A bad row: which (1 = the first data row), which field, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub row: usize,
    pub field: Option<String>,
    pub detail: String,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub rows: usize,
    /// Good rows written (created or updated).
    pub applied: usize,
    pub debtors_created: usize,
    pub accounts_created: usize,
    /// Bad rows, not written.
    pub rejected: usize,
    pub errors: Vec<RowError>,
}

struct GoodRow {
    row: usize,
    debtor: Debtor,
    account: Account,
}

#[utoipa::path(post, path = "/v1/imports", tag = "imports",
    summary = "Bulk import of debtors and accounts (NDJSON or CSV, up to 10,000 rows)",
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv"),
    ), description = "One row a line: the fields of ImportRow (CSV: a header line naming them)"),
    responses(
        (status = 200, body = ImportReport, description = "every row checked; good rows written, bad rows named"),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["accounts:write"])))]
pub(crate) async fn import(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let parsed = match media.as_str() {
        "application/x-ndjson" | "application/jsonl" => parse_ndjson(&body)?,
        "text/csv" => parse_csv(&body)?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send `application/x-ndjson` or `text/csv`",
            ))
        }
    };
    if parsed.is_empty() {
        return Err(Problem::bad_request("the import has no rows"));
    }
    let now = s.clock.now();
    let tenant = s.tenant(&caller).await?;
    let mut report = ImportReport {
        rows: parsed.len(),
        ..Default::default()
    };
    let mut good = Vec::new();
    let mut accounts_seen: HashMap<String, usize> = HashMap::new();
    for (i, row) in parsed.into_iter().enumerate() {
        let n = i + 1;
        let checked = row
            .and_then(|r| check(r, &caller, tenant.kind, now))
            .and_then(
                |g| match accounts_seen.insert(g.account.id.to_string(), n) {
                    Some(first) => Err((
                        Some("account_id".to_string()),
                        format!("account `{}` is already in row {first}", g.account.id),
                    )),
                    None => Ok(g),
                },
            );
        match checked {
            Ok(mut g) => {
                g.row = n;
                good.push(g);
            }
            Err((field, detail)) => report.errors.push(RowError {
                row: n,
                field,
                detail,
            }),
        }
    }
    // Rows of one debtor go in order (each rewrites the debtor); different debtors in parallel.
    let mut by_debtor: Vec<Vec<GoodRow>> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    for g in good {
        let i = *slot.entry(g.debtor.id.to_string()).or_insert_with(|| {
            by_debtor.push(Vec::new());
            by_debtor.len() - 1
        });
        by_debtor[i].push(g);
    }
    let results: Vec<Vec<(usize, Result<cobro::repo::RowWritten, Problem>)>> =
        stream::iter(by_debtor)
            .map(|rows| {
                let (s, tenant) = (&s, &tenant);
                async move {
                    let mut out = Vec::with_capacity(rows.len());
                    for g in rows {
                        out.push((g.row, write(s, tenant, g, now).await));
                    }
                    out
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
    for (row, result) in results.into_iter().flatten() {
        match result {
            Ok(w) => {
                report.applied += 1;
                report.debtors_created += usize::from(w.debtor_created);
                report.accounts_created += usize::from(w.account_created);
            }
            // The row itself is wrong (an account's currency changed): sending it again
            // would not help.
            Err(p) if p.status < 500 => report.errors.push(RowError {
                row,
                field: p.field,
                detail: format!("not written: {}", p.detail),
            }),
            Err(p) => report.errors.push(RowError {
                row,
                field: None,
                detail: format!("not written ({}); send the row again", p.detail),
            }),
        }
    }
    report.errors.sort_by_key(|e| e.row);
    report.rejected = report.errors.len();
    Ok(Json(report).into_response())
}

async fn write(
    s: &CrmApi,
    tenant: &cobro::domain::Tenant,
    g: GoodRow,
    now: jiff::Timestamp,
) -> Result<cobro::repo::RowWritten, Problem> {
    let account = g.account;
    let (_, written) = s
        .store
        .upsert_debtor_and_account(
            &g.debtor,
            &account.id,
            now,
            |current| {
                let mut a = account.clone();
                if let Some(c) = current {
                    // What the CRM's row does not say, an action may have set: keep it.
                    a.holds = c.holds.clone();
                    if a.balance_minor > 0 && c.status != AccountStatus::Settled {
                        a.status = c.status;
                    }
                }
                a
            },
            |a, d| s.decider.first_action(tenant, a, d, now),
        )
        .await?;
    Ok(written)
}

type RowResult = Result<ImportRow, (Option<String>, String)>;

fn parse_ndjson(body: &[u8]) -> Result<Vec<RowResult>, Problem> {
    let text =
        std::str::from_utf8(body).map_err(|_| Problem::bad_request("the body is not UTF-8"))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    too_many(lines.len())?;
    Ok(lines
        .into_iter()
        .map(|line| {
            let de = &mut serde_json::Deserializer::from_str(line);
            serde_path_to_error::deserialize::<_, ImportRow>(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                let detail = inner
                    .rfind(" at line ")
                    .map_or(inner.clone(), |i| inner[..i].to_string());
                let field = detail
                    .strip_prefix("missing field `")
                    .and_then(|m| m.strip_suffix('`'))
                    .map(str::to_string)
                    .or_else(|| (path != ".").then_some(path));
                (field, detail)
            })
        })
        .collect())
}

fn parse_csv(body: &[u8]) -> Result<Vec<RowResult>, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| Problem::bad_request(format!("the CSV header line cannot be read: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        too_many(rows.len() + 1)?;
        let row = match record {
            Ok(r) => r.deserialize::<ImportRow>(Some(&headers)).map_err(|e| {
                let field = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => match err.kind() {
                        csv::DeserializeErrorKind::Message(m) => m
                            .strip_prefix("missing field `")
                            .and_then(|m| m.split('`').next())
                            .map(str::to_string),
                        _ => None,
                    }
                    .or_else(|| {
                        err.field()
                            .and_then(|i| headers.get(i as usize))
                            .map(str::to_string)
                    }),
                    _ => None,
                };
                (field, e.to_string())
            }),
            Err(e) => Err((None, format!("not a CSV record: {e}"))),
        };
        rows.push(row);
    }
    Ok(rows)
}

fn too_many(n: usize) -> Result<(), Problem> {
    if n > MAX_ROWS {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-rows",
            format!("an import has at most {MAX_ROWS} rows; split it"),
        ));
    }
    Ok(())
}

fn check(
    r: ImportRow,
    caller: &Caller,
    kind: cobro::domain::TenantKind,
    now: jiff::Timestamp,
) -> Result<GoodRow, (Option<String>, String)> {
    let bad = |field: &str, e: &dyn std::fmt::Display| (Some(field.to_string()), e.to_string());
    let creditor = cobro::domain::check_creditor(kind, r.creditor.as_deref())
        .map_err(|e| bad("creditor", &e))?;
    let debtor_id = DebtorId::parse(r.debtor_id).map_err(|e| bad("debtor_id", &e))?;
    let account_id = AccountId::parse(r.account_id).map_err(|e| bad("account_id", &e))?;
    if r.name.trim().is_empty() {
        return Err(bad("name", &"is required"));
    }
    let phone = Phone::parse(&r.phone).map_err(|e| bad("phone", &e))?;
    let time_zone = Zone::parse(&r.time_zone).map_err(|e| bad("time_zone", &e))?;
    let language = match r.language.as_deref() {
        None | Some("") => Language::default(),
        Some(l) => Language::parse(l).map_err(|e| bad("language", &e))?,
    };
    let currency = Currency::parse(&r.currency).map_err(|e| bad("currency", &e))?;
    let due_date: jiff::civil::Date = r
        .due_date
        .parse()
        .map_err(|e: jiff::Error| bad("due_date", &e))?;
    for (field, minor) in [
        ("principal_minor", r.principal_minor),
        ("balance_minor", r.balance_minor),
    ] {
        if !(0..=cobro::domain::MAX_MINOR).contains(&minor) {
            let why = format!("must be 0 to {} minor units", cobro::domain::MAX_MINOR);
            return Err(bad(field, &why));
        }
    }
    let consents = [
        (ChannelKind::Whatsapp, r.whatsapp_consent),
        (ChannelKind::Sms, r.sms_consent),
        (ChannelKind::Email, r.email_consent),
    ]
    .into_iter()
    .filter_map(|(channel, granted)| {
        granted.map(|granted| Consent {
            channel,
            granted,
            at: now,
            source: "crm".into(),
        })
    })
    .collect();
    let debtor = Debtor {
        tenant: caller.tenant.clone(),
        id: debtor_id.clone(),
        name: r.name.trim().to_string(),
        phone,
        email: r.email.filter(|e| !e.is_empty()),
        time_zone,
        language,
        consents,
        // The debtor's own choices; a stored debtor's are kept by the merge.
        preferences: Default::default(),
        holds: Default::default(),
    };
    let account = Account {
        creditor,
        product: r.product.filter(|p| !p.is_empty()),
        tags: r
            .tags
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        ..Account::new(
            caller.tenant.clone(),
            account_id,
            debtor_id,
            currency,
            r.principal_minor,
            r.balance_minor,
            due_date,
        )
    };
    Ok(GoodRow {
        row: 0,
        debtor,
        account,
    })
}
