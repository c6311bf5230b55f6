//! Finance exports: `POST /v1/exports` records a job and asks for it to run (an
//! `ExportRequested` event, which the export function consumes); `GET /v1/exports/{id}` tells
//! how far it got and, once done, gives a short-lived download link.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use cobro::export::job::{check_job_id, default_zone, JobRef, EXPORT_REQUESTED};
use cobro::export::{ExportJob, ExportRequest, JobStatus};
use cobro::http::{parse_json, Problem};
use cobro::ports::blobs::DownloadLinks;
use cobro::ports::Event;

use crate::{Caller, CrmApi};

/// How long a download link works.
pub const LINK_VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// Where export files are, for their download links. The local stack adds it to the router
/// as an extension; on AWS the exports bucket is built from the environment on first use.
#[derive(Clone)]
pub struct ExportFiles(pub Arc<dyn DownloadLinks>);

/// `POST /v1/exports`'s body, for the OpenAPI document (`cobro::export::ExportRequest` is
/// what is parsed).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ExportRequestDoc {
    /// `payments`, `accounts`, `aging`, `plans` or `contacts`.
    #[schema(pattern = "^(payments|accounts|aging|plans|contacts)$")]
    kind: String,
    /// Calendar days, both included (at most 366).
    period: PeriodDoc,
    /// `csv`, `xlsx` or `jsonl`.
    #[schema(pattern = "^(csv|xlsx|jsonl)$")]
    format: String,
    /// IANA zone for the period's days and the `*_local` columns.
    time_zone: Option<String>,
    /// Your id for this export (1 to 64 letters, digits, `-`, `_`): the same id returns the
    /// same job.
    id: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct PeriodDoc {
    #[schema(format = Date)]
    from: String,
    #[schema(format = Date)]
    to: String,
}

#[utoipa::path(post, path = "/v1/exports", tag = "exports", summary = "Start a finance export (runs asynchronously)",
    request_body = ExportRequestDoc,
    responses((status = 202, body = Object, description = "the job, queued"), (status = 200, body = Object, description = "the same id asked again"),
        (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 409, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["exports"])))]
pub async fn post_export(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    attempt: Option<Extension<crate::idempotency::FirstAttempt>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let request: ExportRequest = parse_json(&body)?;
    request
        .period
        .validate()
        .map_err(|e| Problem::invalid_field("period", e.to_string()))?;
    let id = match &request.id {
        Some(id) => {
            check_job_id(id).map_err(|e| Problem::invalid_field("id", e.to_string()))?;
            id.clone()
        }
        // A retry under the same key (after a 503) is the same job, queued again, not a
        // second one left behind.
        None => match &attempt {
            Some(Extension(a)) => id_of_key(&a.key),
            None => uuid_like(),
        },
    };
    let tenant = s.tenant(&caller).await?;
    let zone = request
        .time_zone
        .clone()
        .unwrap_or_else(|| default_zone(&tenant.country));
    let job = ExportJob::new(
        caller.tenant.clone(),
        id,
        &request,
        zone,
        s.clock.now(),
        "api",
    );
    let (job, created) = s.store.create_export_job(&job).await?;
    if !created && !same_request(&job, &request) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("export `{}` exists with other parameters", job.id),
        ));
    }
    // Asked again while still queued: the event may have been lost, so it is sent again (the
    // export function runs a job once however often it is asked).
    if job.status == JobStatus::Queued {
        let detail = JobRef {
            tenant: job.tenant.clone(),
            job: job.id.clone(),
        };
        s.bus
            .publish(vec![Event::new(EXPORT_REQUESTED, json!(detail))])
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "publishing an export request failed");
                Problem::unavailable("the export could not be queued; send the same request again")
            })?;
    }
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/exports/{}", job.id);
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(json!({ "export": view(&job) })),
    )
        .into_response())
}

/// The job as the API shows it: with `kind`, as the request names it.
fn view(job: &ExportJob) -> serde_json::Value {
    let mut v = json!(job);
    if let Some(o) = v.as_object_mut() {
        if let Some(kind) = o.remove("export_kind") {
            o.insert("kind".into(), kind);
        }
    }
    v
}

fn same_request(job: &ExportJob, r: &ExportRequest) -> bool {
    job.kind == r.kind
        && job.format == r.format
        && job.period == r.period
        && r.time_zone.as_ref().is_none_or(|z| *z == job.time_zone)
}

/// A new id: a UUID v7 in hex, so ids sort by creation time.
fn uuid_like() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The id of a job asked for without one under an `Idempotency-Key`: from the key (keys are
/// per tenant, as jobs are), in the characters a job id allows.
fn id_of_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("key-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
}

#[utoipa::path(get, path = "/v1/exports/{id}", tag = "exports", summary = "An export's status, totals and, once done, a download link",
    params(("id" = String, Path, description = "the export's id", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    responses((status = 200, body = Object), (status = 400, body = crate::openapi::ProblemDoc, content_type = "application/problem+json"), (status = 404, body = crate::openapi::ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = ["exports"])))]
pub async fn get_export(
    State(s): State<Arc<CrmApi>>,
    Extension(caller): Extension<Caller>,
    files: Option<Extension<ExportFiles>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    check_job_id(&id).map_err(|e| Problem::invalid_field("id", e.to_string()))?;
    let job = s
        .store
        .export_job(&caller.tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no export `{id}`")))?;
    let mut body = json!({ "export": view(&job) });
    if job.status == JobStatus::Done {
        let files = match files {
            Some(Extension(f)) => f.0,
            None => aws_files().await?,
        };
        let link = files
            .download_link(&job.object_key, LINK_VALID_FOR)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "an export's download link failed");
                Problem::unavailable("the download link could not be made; retry")
            })?;
        match link {
            Some(url) => {
                let expires = s.clock.now()
                    + jiff::SignedDuration::from_secs(LINK_VALID_FOR.as_secs() as i64);
                body["download_url"] = json!(url);
                body["download_expires_at"] = json!(expires);
            }
            // Done but the file is gone: the bucket's lifecycle rule expired it.
            None => body["download_url"] = json!(null),
        }
    }
    Ok(Json(body).into_response())
}

#[cfg(feature = "lambda")]
async fn aws_files() -> Result<Arc<dyn DownloadLinks>, Problem> {
    static FILES: tokio::sync::OnceCell<Arc<dyn DownloadLinks>> =
        tokio::sync::OnceCell::const_new();
    FILES
        .get_or_try_init(cobro::lambda::export_links)
        .await
        .cloned()
        .map_err(|e| {
            tracing::error!(error = %e, "the exports bucket is not configured");
            Problem::unavailable("download links are not configured on this deployment")
        })
}

#[cfg(not(feature = "lambda"))]
async fn aws_files() -> Result<Arc<dyn DownloadLinks>, Problem> {
    tracing::error!("no ExportFiles extension on the router");
    Err(Problem::internal())
}
