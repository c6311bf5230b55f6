//! Cursor pagination: `?limit=&cursor=`, answered with `items` and `next_cursor` (absent on the
//! last page). The cursor is opaque: pass back what the previous page returned.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use cobro::http::Problem;
use cobro::repo::Paged;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The page a request asks for, checked.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Query(p) = Query::<PageParams>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::invalid_field("limit", e.body_text()))?;
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::invalid_field(
                "limit",
                format!("must be 1 to {MAX_LIMIT}"),
            ));
        }
        let cursor = p.cursor.filter(|c| !c.is_empty());
        Ok(Self { limit, cursor })
    }
}

/// A page as the API answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> From<Paged<T>> for Page<T> {
    fn from(p: Paged<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next,
        }
    }
}
