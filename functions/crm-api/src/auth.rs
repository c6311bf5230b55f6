//! API keys: `Authorization: Bearer <key>`, looked up by hash, scoped to one tenant.
//!
//! Two layers: `require_key` on the whole router (401 without a valid, unrevoked key) and
//! `RequireScope` on each route (403 when the key lacks the route's scope):
//!
//! ```ignore
//! .route("/v1/exports", post(start_export).route_layer(RequireScope(Scope::Exports)))
//! ```

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use cobro::domain::TenantId;
use cobro::http::Problem;
use cobro::repo::{ApiKeyRecord, Scope};

use crate::CrmApi;

/// Who is calling: every handler reads and writes only this tenant's data.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    /// The key that authenticated the request: its id names who did what in action records.
    pub key: ApiKeyRecord,
}

impl Caller {
    /// Who acted, for the records an action leaves: `key:<id> (<name>)`.
    pub fn actor(&self) -> String {
        format!("key:{} ({})", self.key.id, self.key.name)
    }
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
        Ok(Some(record)) if !record.is_revoked() => {
            cobro::logs::record_tenant(&record.tenant);
            req.extensions_mut().insert(Caller {
                tenant: record.tenant.clone(),
                key: record,
            });
            // Then the `Idempotency-Key` of a POST: one layer for both, since each route
            // layer is built for every route at a cold start.
            crate::idempotency::honour_key(State(s), req, next).await
        }
        Ok(_) => Problem::unauthorized("unknown or revoked API key").into_response(),
        // A record this version cannot read (one stored before keys had ids and scopes):
        // refused, not a server error; the operator issues a new key.
        Err(cobro::repo::RepoError::Corrupt(e)) => {
            tracing::error!(error = %e, "an unreadable API key record");
            Problem::unauthorized("unknown or revoked API key").into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

/// A per-route layer: the request's key must grant this scope (`admin` grants all), else 403.
/// Goes under `require_key`, which puts the `Caller` on the request.
#[derive(Debug, Clone, Copy)]
pub struct RequireScope(pub Scope);

impl<S> tower::Layer<S> for RequireScope {
    type Service = ScopeCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ScopeCheck {
            inner,
            scope: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScopeCheck<S> {
    inner: S,
    scope: Scope,
}

impl<S> tower::Service<Request> for ScopeCheck<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let refusal = match req.extensions().get::<Caller>() {
            None => Some(Problem::unauthorized(
                "send your API key as `Authorization: Bearer <key>`",
            )),
            Some(caller) if !caller.key.allows(self.scope) => Some(forbidden(self.scope)),
            Some(_) => None,
        };
        match refusal {
            Some(p) => Box::pin(async move { Ok(p.into_response()) }),
            None => Box::pin(self.inner.call(req)),
        }
    }
}

fn forbidden(scope: Scope) -> Problem {
    Problem::forbidden(format!("this API key lacks the `{scope}` scope"))
}
