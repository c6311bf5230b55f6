//! `Idempotency-Key` on every POST: the first request with a key runs and its response is kept
//! for a day; a retry with the same key and the same request gets that response again (with
//! `Idempotent-Replayed: true`), the same key with another request gets 422, and a retry while
//! the first still runs gets 409. A retry after a server error runs again, with the first
//! attempt's time in the request (`FirstAttempt`), so that a time the request defaults to now
//! (a consent's) is the same in both attempts and what the first recorded is not recorded twice.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use tower::ServiceExt;

use cobro::domain::TenantId;
use cobro::http::Problem;
use cobro::repo::{Begin, SavedResponse};

use crate::CrmApi;

pub const HEADER: &str = "idempotency-key";

/// A request with an `Idempotency-Key`, as its handler sees it: the key, and when the request
/// was first tried under it, the time the handler uses for what it would stamp with now (so a
/// retry after a server error stamps what the first attempt did). Absent without a key.
#[derive(Debug, Clone)]
pub struct FirstAttempt {
    pub key: String,
    pub at: jiff::Timestamp,
}

/// The largest request body the API reads (an import of 10,000 rows fits).
pub const MAX_BODY: usize = 6 * 1024 * 1024;
/// Responses larger than this are not kept (a table item holds 400 KB).
const MAX_SAVED: usize = 300 * 1024;

/// Runs `next` for the request of `tenant`'s caller, or answers for it from the response kept
/// under its key.
pub async fn honour_key<S>(s: &CrmApi, tenant: &TenantId, req: Request, next: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    if req.method() != Method::POST {
        return run(next, req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return run(next, req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return Problem::invalid_field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return too_large();
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update(b" ");
    hash.update(parts.uri.to_string());
    hash.update(b"\n");
    hash.update(&bytes);
    let request_hash = hex::encode(hash.finalize());

    let started = s.clock.now();
    let first_at = match s
        .store
        .begin_idempotent(tenant, &key, &request_hash, started)
        .await
    {
        Ok(Begin::Run { first_at }) => first_at,
        Ok(Begin::Replay(saved)) => return replay(saved),
        Ok(Begin::InFlight) => {
            return Problem::new(
                StatusCode::CONFLICT,
                "in-flight",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .into_response()
        }
        Ok(Begin::Mismatch) => {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
            )
            .into_response()
        }
        Err(e) => return Problem::from(e).into_response(),
    };

    parts.extensions.insert(FirstAttempt {
        key: key.clone(),
        at: first_at,
    });
    let res = run(next, Request::from_parts(parts, Body::from(bytes))).await;
    let abandon = || {
        s.store.abandon_idempotent(
            tenant,
            &key,
            &request_hash,
            started,
            first_at,
            s.clock.now(),
        )
    };
    let status = res.status();
    let (parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        let _ = abandon().await;
        return Problem::internal().into_response();
    };
    // What a retry may fix is not kept: server errors, throttling, a key without the scope,
    // and a conflict with the state of the moment (a concurrent change, a plan replaced):
    // each changed nothing, so running the retry again is safe.
    let keep = !(status.is_server_error()
        || matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::CONFLICT
        ))
        && bytes.len() <= MAX_SAVED;
    let outcome = if keep {
        let saved = SavedResponse {
            status: status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        s.store
            .finish_idempotent(tenant, &key, &request_hash, started, saved, s.clock.now())
            .await
    } else {
        abandon().await
    };
    if let Err(e) = outcome {
        // The request itself succeeded or failed as answered; only its replay is lost.
        tracing::warn!(error = %e, "could not keep an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(saved: SavedResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut res = (status, saved.body).into_response();
    let headers = res.headers_mut();
    if let Some(ct) = saved
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}

fn too_large() -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        format!("the body is larger than {MAX_BODY} bytes"),
    )
    .into_response()
}

async fn run<S>(next: S, req: Request) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    match next.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}
