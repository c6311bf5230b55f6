//! E.164 phone numbers: `+` and 8 to 15 digits, the first not 0.

use serde::{Deserialize, Serialize};

use super::DomainError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let digits = s
            .strip_prefix('+')
            .ok_or_else(|| DomainError::new("a phone number is in E.164 form: + then digits"))?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::new(
                "a phone number in E.164 form has 8 to 15 digits after +",
            ));
        }
        if digits.starts_with('0') {
            return Err(DomainError::new(
                "an E.164 number does not start with 0 after +",
            ));
        }
        Ok(Phone(s.to_string()))
    }

    /// WhatsApp's `wa_id`/`from` form: the digits without `+`.
    pub fn from_wa_id(wa_id: &str) -> Result<Self, DomainError> {
        Phone::parse(&format!("+{wa_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn wa_id(&self) -> &str {
        &self.0[1..]
    }

    /// For logs: the country code and the last two digits only.
    pub fn masked(&self) -> String {
        let d = self.wa_id();
        format!("+{}…{}", &d[..2], &d[d.len() - 2..])
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Phone::parse(&s)
    }
}
impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164() {
        assert!(Phone::parse("+56912345678").is_ok());
        assert!(Phone::parse("56912345678").is_err());
        assert!(Phone::parse("+0912345678").is_err());
        assert!(Phone::parse("+5691234567a").is_err());
        assert!(Phone::parse("+1234567").is_err());
        assert_eq!(
            Phone::from_wa_id("16505551234").unwrap().as_str(),
            "+16505551234"
        );
        assert_eq!(Phone::parse("+56912345678").unwrap().masked(), "+56…78");
    }
}
