//! HTTP helpers shared by the HTTP functions: one error shape (RFC 9457 problem details) and a
//! JSON body parser whose errors name the field.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{de::DeserializeOwned, Serialize};

use crate::repo::RepoError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The JSON path of the offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://cobro.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let detail = format!("`{field}`: {}", detail.into());
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid-field", detail)
        }
    }

    /// The request is well formed, but one field clashes with what is stored (409).
    pub fn conflicting_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let detail = format!("`{field}`: {}", detail.into());
        Self {
            field: Some(field),
            ..Self::new(StatusCode::CONFLICT, "conflict", detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// Authenticated, but the key may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// A dependency is down: the caller should retry (Meta does, for 7 days).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something failed on our side; it was logged",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("problem serializes");
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

impl From<RepoError> for Problem {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            RepoError::Invalid(msg) => Problem::bad_request(msg),
            RepoError::InvalidField { field, detail } => Problem::invalid_field(field, detail),
            RepoError::Conflict(msg) => Problem::new(StatusCode::CONFLICT, "conflict", msg),
            e => {
                tracing::error!(error = %e, "store failure");
                Problem::internal()
            }
        }
    }
}

/// Parses a JSON body; a type or validation error names the field's path (`phone`,
/// `consents[0].channel`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if body.is_empty() {
        return Err(Problem::bad_request("the request needs a JSON body"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = strip_position(&inner.to_string());
        if inner.is_syntax() || inner.is_eof() {
            Problem::bad_request(format!("the body is not valid JSON: {inner}"))
        } else if let Some(name) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            Problem::invalid_field(field, "is required")
        } else if path == "." {
            Problem::bad_request(strip_position(&inner.to_string()))
        } else {
            Problem::invalid_field(path, strip_position(&inner.to_string()))
        }
    })
}

/// serde's messages end in "at line 1 column 42", which means nothing to an API caller.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Phone;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        phone: Phone,
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"phone":"123","items":[]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("phone"));
        assert!(e.detail.contains("E.164"), "{}", e.detail);
        let e = parse_json::<Body>(br#"{"phone":"+56912345678","items":[{"n":-1}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("items[0].n"));
        let e = parse_json::<Body>(br#"{"phone":"+56912345678"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("items"));
        let e = parse_json::<Body>(b"{nope").unwrap_err();
        assert_eq!(e.status, 400);
    }
}
