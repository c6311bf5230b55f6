//! API keys: `Authorization: Bearer <key>`, looked up by hash, scoped to one tenant.
//!
//! Every API route runs under one `Guard` layer that holds the route's scope:
//!
//! ```ignore
//! .route("/v1/exports", post(start_export).route_layer(guards.exports()))
//! ```
//!
//! In order: the key (401 without a valid, unrevoked key), its scope (403), the body limit,
//! then the `Idempotency-Key` of a POST. One layer per route, and none on the router as a
//! whole: a router-wide layer is applied to every route again when the router is built, and
//! that is paid at every cold start (docs/benchmarks.md, "Cold start, session 6"). Unknown
//! routes have no guard and answer 404 with or without a key.

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Layer;

use cobro::domain::TenantId;
use cobro::http::Problem;
use cobro::repo::{ApiKeyRecord, Scope};

use crate::idempotency::{self, MAX_BODY};
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

/// The guards of one API, one per scope a route may require.
#[derive(Clone)]
pub struct Guards(Arc<CrmApi>);

impl Guards {
    pub fn new(state: &Arc<CrmApi>) -> Self {
        Self(state.clone())
    }

    fn scope(&self, scope: Scope) -> Guard {
        Guard {
            state: self.0.clone(),
            scope,
        }
    }

    pub fn read(&self) -> Guard {
        self.scope(Scope::AccountsRead)
    }

    pub fn write(&self) -> Guard {
        self.scope(Scope::AccountsWrite)
    }

    pub fn payments(&self) -> Guard {
        self.scope(Scope::PaymentsWrite)
    }

    pub fn exports(&self) -> Guard {
        self.scope(Scope::Exports)
    }

    pub fn agent(&self) -> Guard {
        self.scope(Scope::Agent)
    }

    pub fn admin(&self) -> Guard {
        self.scope(Scope::Admin)
    }
}

/// A route's layer: its key, its scope (`admin` grants all), the body limit, idempotency.
#[derive(Clone)]
pub struct Guard {
    state: Arc<CrmApi>,
    scope: Scope,
}

type Limited<S> = <DefaultBodyLimit as Layer<S>>::Service;

impl<S> Layer<S> for Guard {
    type Service = Guarded<Limited<S>>;
    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner: DefaultBodyLimit::max(MAX_BODY).layer(inner),
            state: self.state.clone(),
            scope: self.scope,
        }
    }
}

#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    state: Arc<CrmApi>,
    scope: Scope,
}

impl<S> tower::Service<Request> for Guarded<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was polled ready goes with the request; a clone stays for the next.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let (state, scope) = (self.state.clone(), self.scope);
        Box::pin(async move { Ok(guard(state, scope, req, inner).await) })
    }
}

async fn guard<S>(state: Arc<CrmApi>, scope: Scope, mut req: Request, inner: S) -> Response
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
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
    match state.store.api_key(key).await {
        Ok(Some(record)) if !record.is_revoked() => {
            cobro::logs::record_tenant(&record.tenant);
            if !record.allows(scope) {
                return forbidden(scope).into_response();
            }
            let tenant = record.tenant.clone();
            req.extensions_mut().insert(Caller {
                tenant: tenant.clone(),
                key: record,
            });
            idempotency::honour_key(&state, &tenant, req, inner).await
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

fn forbidden(scope: Scope) -> Problem {
    Problem::forbidden(format!("this API key lacks the `{scope}` scope"))
}
