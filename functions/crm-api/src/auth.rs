//! API keys: `Authorization: Bearer <key>`, looked up by hash, scoped to one tenant.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use cobro::domain::TenantId;
use cobro::http::Problem;

use crate::CrmApi;

/// Who is calling: every handler reads and writes only this tenant's data.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
}

pub async fn require_key(State(s): State<Arc<CrmApi>>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Problem::unauthorized("send your API key as `Authorization: Bearer <key>`")
            .into_response();
    };
    match s.store.api_key(key).await {
        Ok(Some(record)) => {
            req.extensions_mut().insert(Caller {
                tenant: record.tenant,
            });
            next.run(req).await
        }
        Ok(None) => Problem::unauthorized("unknown or revoked API key").into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}
