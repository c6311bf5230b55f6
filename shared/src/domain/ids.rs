//! Identifiers. A tenant's id and the CRM's external ids go into table keys, so they are
//! restricted to characters that cannot break a key (`#` separates key parts).

use serde::{Deserialize, Serialize};

use super::DomainError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
                let s = s.into();
                check_id(&s, $what)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, DomainError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!("the ", $what),
                    "pattern": ID_PATTERN,
                })
            }
        }
    };
}

/// What `check_id` accepts, as a JSON Schema pattern.
#[cfg(feature = "schema")]
const ID_PATTERN: &str = r"^[A-Za-z0-9._:@-]{1,128}$";

id_type!(
    /// A creditor or portfolio owner: every key starts with it.
    TenantId, "tenant id"
);
id_type!(
    /// The CRM's own id for a debtor.
    DebtorId, "debtor id"
);
id_type!(
    /// The CRM's own id for an account (a loan, an invoice, a contract).
    AccountId, "account id"
);
id_type!(
    /// The payment's id at its source (the PSP's or the CRM's); the idempotency key of a payment.
    PaymentId, "payment id"
);

pub const MAX_ID_LEN: usize = 128;

fn check_id(s: &str, what: &str) -> Result<(), DomainError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(DomainError::new(format!(
            "a {what} has 1 to {MAX_ID_LEN} characters"
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(DomainError::new(format!(
            "a {what} may use letters, digits and - _ . : @ only, not {c:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_key_separators_and_empty() {
        assert!(AccountId::parse("LN-2024-0001").is_ok());
        assert!(AccountId::parse("a#b").is_err());
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("x".repeat(129)).is_err());
        assert!(serde_json::from_str::<TenantId>("\"a b\"").is_err());
    }
}
