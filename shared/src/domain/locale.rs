//! Language and time zone of a debtor.

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Languages cobro writes to debtors in. Spanish is the default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Es,
    Pt,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Es => "es",
            Language::Pt => "pt",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.to_ascii_lowercase().split(['-', '_']).next() {
            Some("es") => Ok(Language::Es),
            Some("pt") => Ok(Language::Pt),
            Some("en") => Ok(Language::En),
            _ => Err(DomainError::new(format!(
                "`{s}` is not a supported language (es, pt, en)"
            ))),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Language::Es => "es",
            Language::Pt => "pt",
            Language::En => "en",
        }
    }
}

/// An IANA time zone name that the bundled tz database knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone(String);

impl Zone {
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        TimeZone::get(name)
            .map_err(|_| DomainError::new(format!("`{name}` is not a known IANA time zone")))?;
        Ok(Zone(name.to_string()))
    }
    pub fn name(&self) -> &str {
        &self.0
    }
    pub fn tz(&self) -> TimeZone {
        TimeZone::get(&self.0).expect("validated on construction")
    }
}

impl TryFrom<String> for Zone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Zone::parse(&s)
    }
}
impl From<Zone> for String {
    fn from(z: Zone) -> String {
        z.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_come_from_the_bundled_database() {
        assert!(Zone::parse("America/Santiago").is_ok());
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Language::parse("pt-BR").unwrap(), Language::Pt);
        assert!(Language::parse("fr").is_err());
    }
}
