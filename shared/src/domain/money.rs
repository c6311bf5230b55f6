//! Money: an integer count of minor units in an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// The currencies cobro's markets use, with their ISO 4217 minor-unit exponents.
const CURRENCIES: &[(&str, u8)] = &[
    ("ARS", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("CLP", 0),
    ("COP", 2),
    ("CRC", 2),
    ("DOP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GTQ", 2),
    ("HNL", 2),
    ("MXN", 2),
    ("NIO", 2),
    ("PAB", 2),
    ("PEN", 2),
    ("PYG", 0),
    ("USD", 2),
    ("UYU", 2),
    ("VES", 2),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        let known = CURRENCIES.iter().find(|(c, _)| *c == code);
        match known {
            Some((c, _)) => {
                let b = c.as_bytes();
                Ok(Currency([b[0], b[1], b[2]]))
            }
            None => Err(DomainError::new(format!(
                "`{code}` is not a supported ISO 4217 currency code"
            ))),
        }
    }
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII code")
    }
    /// Digits after the decimal point (CLP 0, EUR 2).
    pub fn exponent(&self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.code())
            .map(|(_, e)| *e)
            .expect("known currency")
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Currency {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        schemars::json_schema!({
            "type": "string",
            "description": "an ISO 4217 currency code",
            "enum": codes,
        })
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}
impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The largest amount cobro takes, in minor units: 10^15 (ten trillion in a currency with
/// cents). Far above any debt it collects, and small enough that a percentage of it, interest
/// on it or the sum of thousands of such amounts stays exact in `i64`.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for EUR, pesos for CLP). May be negative only as a difference.
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or_else(|| DomainError::new("amount out of range"))?;
        Ok(Money::new(minor, self.currency))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, DomainError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| DomainError::new("amount out of range"))?;
        Ok(Money::new(minor, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::new(format!(
                "cannot mix {} and {}",
                self.currency, other.currency
            )));
        }
        Ok(())
    }

    /// Splits into `parts` amounts that add up exactly to this one: the remainder of the
    /// division goes one minor unit at a time to the first parts.
    pub fn split(self, parts: u32) -> Vec<Money> {
        assert!(parts > 0, "split into zero parts");
        let n = i64::from(parts);
        let (base, rem) = (self.minor.div_euclid(n), self.minor.rem_euclid(n));
        (0..n)
            .map(|i| Money::new(base + i64::from(i < rem), self.currency))
            .collect()
    }

    /// Human format for messages: `CLP 150.000` style is locale work; here a plain
    /// `1234.50 EUR` that is never ambiguous.
    pub fn display(&self) -> String {
        let e = u32::from(self.currency.exponent());
        if e == 0 {
            return format!("{} {}", self.minor, self.currency);
        }
        let scale = 10i64.pow(e);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$} {}",
            abs / scale as u64,
            abs % scale as u64,
            self.currency,
            width = e as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies_know_their_exponent() {
        assert_eq!(Currency::parse("CLP").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("eur").is_err());
    }

    #[test]
    fn display_uses_minor_units() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(123450, eur).display(), "1234.50 EUR");
        assert_eq!(Money::new(-5, eur).display(), "-0.05 EUR");
        assert_eq!(
            Money::new(150000, Currency::parse("CLP").unwrap()).display(),
            "150000 CLP"
        );
    }

    #[test]
    fn mixing_currencies_fails() {
        let a = Money::new(1, Currency::parse("EUR").unwrap());
        let b = Money::new(1, Currency::parse("USD").unwrap());
        assert!(a.checked_sub(b).is_err());
    }

    proptest! {
        #[test]
        fn splits_add_up_exactly(minor in -1_000_000_000i64..1_000_000_000, parts in 1u32..60) {
            let m = Money::new(minor, Currency::parse("CLP").unwrap());
            let split = m.split(parts);
            prop_assert_eq!(split.len(), parts as usize);
            prop_assert_eq!(split.iter().map(|p| p.minor).sum::<i64>(), minor);
            let max = split.iter().map(|p| p.minor).max().unwrap();
            let min = split.iter().map(|p| p.minor).min().unwrap();
            prop_assert!(max - min <= 1);
        }
    }
}
