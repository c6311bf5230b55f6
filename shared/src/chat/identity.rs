//! What a debtor answers to prove who they are, kept only as salted hashes: cobro can check an
//! answer without storing the national id or the date of birth.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::settings::IdentityCheck;
use crate::domain::{DebtorId, Language, TenantId};

/// The hashed answers on record for one debtor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityFacts {
    #[serde(default)]
    pub national_id_last4: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
}

fn hash(tenant: &TenantId, debtor: &DebtorId, what: &str, value: &str) -> String {
    let digest = Sha256::digest(format!("cobro-identity|{tenant}|{debtor}|{what}|{value}"));
    hex::encode(digest)
}

/// The last four letters or digits of an id, upper case: "12.345.678-k" → "678K".
fn last4(raw: &str) -> Option<String> {
    let clean: Vec<char> = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (clean.len() >= 4).then(|| clean[clean.len() - 4..].iter().collect())
}

impl IdentityFacts {
    /// From what the CRM knows; the raw values are not kept.
    pub fn from_raw(
        tenant: &TenantId,
        debtor: &DebtorId,
        national_id: Option<&str>,
        birth_date: Option<Date>,
    ) -> Result<Self, String> {
        let national_id_last4 = match national_id {
            Some(id) => Some(
                last4(id)
                    .map(|l| hash(tenant, debtor, "id4", &l))
                    .ok_or("national_id: needs at least 4 letters or digits")?,
            ),
            None => None,
        };
        Ok(Self {
            national_id_last4,
            birth_date: birth_date.map(|d| hash(tenant, debtor, "dob", &d.to_string())),
        })
    }

    /// Whether the answer matches; `None` when nothing is on record for this check.
    pub fn check(
        &self,
        check: IdentityCheck,
        tenant: &TenantId,
        debtor: &DebtorId,
        answer: &str,
        language: Language,
    ) -> Option<bool> {
        match check {
            IdentityCheck::PhoneOnly => Some(true),
            IdentityCheck::NationalIdLast4 => {
                let expected = self.national_id_last4.as_ref()?;
                let typed: String = answer
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                Some(typed.len() == 4 && &hash(tenant, debtor, "id4", &typed) == expected)
            }
            IdentityCheck::BirthDate => {
                let expected = self.birth_date.as_ref()?;
                // A birth date is in the past: read it without the "next such day" rule.
                let date = birth_date(answer, language);
                Some(date.is_some_and(|d| &hash(tenant, debtor, "dob", &d.to_string()) == expected))
            }
        }
    }
}

fn birth_date(answer: &str, language: Language) -> Option<Date> {
    let parts: Vec<i32> = answer
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let (d, m, y) = match parts.as_slice() {
        [y, m, d] if *y > 31 => (*d, *m, *y),
        [a, b, y] if language == Language::En && *a <= 12 && *b > 12 => (*b, *a, *y),
        [d, m, y] => (*d, *m, *y),
        _ => return None,
    };
    let y = if y < 100 { 1900 + y } else { y };
    Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn answers_match_their_hash_only() {
        let t = TenantId::parse("t1").unwrap();
        let d = DebtorId::parse("d1").unwrap();
        let facts =
            IdentityFacts::from_raw(&t, &d, Some("12.345.678-k"), Some(date(1990, 4, 7))).unwrap();
        let check = |c, a| facts.check(c, &t, &d, a, Language::Es);
        assert_eq!(check(IdentityCheck::NationalIdLast4, "678k"), Some(true));
        assert_eq!(check(IdentityCheck::NationalIdLast4, "678-K"), Some(true));
        assert_eq!(check(IdentityCheck::NationalIdLast4, "5678"), Some(false));
        assert_eq!(check(IdentityCheck::BirthDate, "07/04/1990"), Some(true));
        assert_eq!(check(IdentityCheck::BirthDate, "1990-04-07"), Some(true));
        assert_eq!(check(IdentityCheck::BirthDate, "08/04/1990"), Some(false));
        // Another debtor's hash of the same value differs.
        let other = DebtorId::parse("d2").unwrap();
        assert_eq!(
            facts.check(
                IdentityCheck::NationalIdLast4,
                &t,
                &other,
                "678K",
                Language::Es
            ),
            Some(false)
        );
        assert!(!serde_json::to_string(&facts).unwrap().contains("678"));
        let none = IdentityFacts::default();
        assert_eq!(
            none.check(IdentityCheck::BirthDate, &t, &d, "07/04/1990", Language::Es),
            None
        );
    }
}
