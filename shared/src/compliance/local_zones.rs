//! Which clocks a debtor's local time is read on. The zone on record comes from the CRM and may
//! be wrong (`UTC`, `Etc/GMT+3` for a Chilean number): it is trusted only when it is one of the
//! zones of the country the debtor's phone is in. Otherwise the engine reads every zone of that
//! country and allows a contact only when all of them allow it: wherever in the country the
//! debtor is, the law's hours hold there, and collection goes on in the hours they share.

use jiff::tz::TimeZone;

use super::country_zones::zones_of_country;
use super::phone_country::country_of_phone;
use crate::domain::Debtor;

/// One zone the engine reads local time on, with its name for the decision's words.
pub(super) struct LocalZone<'a> {
    pub name: &'a str,
    pub tz: TimeZone,
}

pub(super) enum Clocks<'a> {
    /// The zone on record, one of the phone's country's.
    Recorded([LocalZone<'a>; 1]),
    /// The zone on record is not one of the phone's country's: every zone of the country.
    Country {
        recorded: &'a str,
        country: &'static str,
        zones: Vec<LocalZone<'static>>,
    },
}

impl<'a> Clocks<'a> {
    /// The clocks for a debtor; `Err` (words for `unknown_time_zone`) when their phone is in
    /// no country whose zones cobro knows, so no zone can be checked (fail closed).
    pub fn of(debtor: &'a Debtor) -> Result<Self, String> {
        let recorded = debtor.time_zone.name();
        let phone = debtor.phone.as_str();
        let country = country_of_phone(phone);
        let Some(known) = country.and_then(zones_of_country) else {
            return Err(match country {
                Some(c) => format!(
                    "the debtor's phone {phone} is in {c}, whose time zones cobro does not \
                     know, so the zone `{recorded}` cannot be checked"
                ),
                None => format!(
                    "the debtor's phone {phone} is in no country cobro can place, so the \
                     zone `{recorded}` cannot be checked"
                ),
            });
        };
        let get = |name: &str| {
            TimeZone::get(name)
                .map_err(|_| format!("the time zone `{name}` is not in the tz database"))
        };
        if known.contains(recorded) {
            let tz = get(recorded)?;
            return Ok(Clocks::Recorded([LocalZone { name: recorded, tz }]));
        }
        let zones = known
            .zones
            .iter()
            .map(|name| {
                Ok(LocalZone {
                    name,
                    tz: get(name)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Clocks::Country {
            recorded,
            country: known.country,
            zones,
        })
    }

    pub fn zones(&self) -> &[LocalZone<'a>] {
        match self {
            Clocks::Recorded(one) => one,
            Clocks::Country { zones, .. } => zones,
        }
    }

    /// Why the decision was read on the country's zones, when it was.
    pub fn distrust(&self) -> Option<String> {
        match self {
            Clocks::Recorded(_) => None,
            Clocks::Country {
                recorded, country, ..
            } => Some(format!(
                "the debtor's zone `{recorded}` is not one of {country}'s, so every zone of \
                 {country} is checked"
            )),
        }
    }
}
