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

/// The time zone of an IANA name, from the tz database compiled into the binary (2025b).
/// jiff's global database prefers the host's zoneinfo, which differs from host to host (a
/// Lambda image, a laptop, CI): a name one process accepted another could not read back, and
/// the same debtor's hours could differ between functions. One database, one answer.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    static BUNDLED: std::sync::LazyLock<jiff::tz::TimeZoneDatabase> =
        std::sync::LazyLock::new(jiff::tz::TimeZoneDatabase::bundled);
    BUNDLED.get(name).ok()
}

impl Zone {
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        time_zone(name)
            .ok_or_else(|| DomainError::new(format!("`{name}` is not a known IANA time zone")))?;
        Ok(Zone(name.to_string()))
    }
    pub fn name(&self) -> &str {
        &self.0
    }
    /// Validated on construction against the same database, so always found.
    pub fn tz(&self) -> TimeZone {
        time_zone(&self.0).unwrap_or(TimeZone::UTC)
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
        // New in tzdb 2025b: known whatever the host's zoneinfo says, with its own rules.
        let coyhaique = Zone::parse("America/Coyhaique").unwrap().tz();
        let winter: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(coyhaique.to_offset(winter).seconds(), -3 * 3600);
        assert_eq!(Language::parse("pt-BR").unwrap(), Language::Pt);
        assert!(Language::parse("fr").is_err());
    }
}
