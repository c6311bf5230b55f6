//! Amounts as decimal strings in the currency's units: `123450` EUR minor units is `1234.50`,
//! `150000` CLP is `150000`. Exact: integer arithmetic only.

use crate::domain::Currency;

/// The amount in the currency's units, with exactly as many decimals as its exponent.
pub fn decimal(minor: i64, currency: Currency) -> String {
    let e = usize::from(currency.exponent());
    let sign = if minor < 0 { "-" } else { "" };
    let digits = minor.unsigned_abs().to_string();
    if e == 0 {
        return format!("{sign}{digits}");
    }
    // Left-pad so there is at least one digit before the point.
    let digits = format!("{digits:0>width$}", width = e + 1);
    let (units, fraction) = digits.split_at(digits.len() - e);
    format!("{sign}{units}.{fraction}")
}

/// The inverse of `decimal`: minor units from a decimal string with at most the currency's
/// number of decimals. `None` for anything else.
pub fn parse_decimal(s: &str, currency: Currency) -> Option<i64> {
    let e = u32::from(currency.exponent());
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (units, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || !digits(units) || !digits(fraction) || fraction.len() > e as usize {
        return None;
    }
    if s.contains('.') && fraction.is_empty() {
        return None;
    }
    let scale = 10i64.checked_pow(e)?;
    let units: i64 = units.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.pow(e - fraction.len() as u32)
    };
    let value = units.checked_mul(scale)?.checked_add(fraction)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn uses_the_currency_exponent() {
        assert_eq!(decimal(123450, c("EUR")), "1234.50");
        assert_eq!(decimal(5, c("EUR")), "0.05");
        assert_eq!(decimal(-5, c("USD")), "-0.05");
        assert_eq!(decimal(0, c("BRL")), "0.00");
        assert_eq!(decimal(150000, c("CLP")), "150000");
        assert_eq!(decimal(-7, c("PYG")), "-7");
        assert_eq!(decimal(i64::MIN, c("EUR")), "-92233720368547758.08");
    }

    #[test]
    fn parses_only_what_it_writes() {
        assert_eq!(parse_decimal("1234.50", c("EUR")), Some(123450));
        assert_eq!(parse_decimal("1234.5", c("EUR")), Some(123450));
        assert_eq!(parse_decimal("12", c("EUR")), Some(1200));
        assert_eq!(parse_decimal("1.5", c("CLP")), None);
        assert_eq!(parse_decimal("1.234", c("EUR")), None);
        assert_eq!(parse_decimal("1.", c("EUR")), None);
        assert_eq!(parse_decimal("", c("EUR")), None);
        assert_eq!(parse_decimal("1,5", c("EUR")), None);
    }

    proptest! {
        #[test]
        fn round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000, clp in any::<bool>()) {
            let cur = if clp { c("CLP") } else { c("EUR") };
            prop_assert_eq!(parse_decimal(&decimal(minor, cur), cur), Some(minor));
        }
    }
}
