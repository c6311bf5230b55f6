//! Which clocks a debtor's local time is read on. The zone on record comes from the CRM and may
//! be wrong (`UTC`, `Etc/GMT+3` for a Chilean number) or right about a debtor who is not in their
//! phone's country (travelling, moved). It is trusted alone only when it is one of the zones of
//! the country the debtor's phone is in. Otherwise the engine reads every zone of that country,
//! and the recorded zone too when it names a place, and allows a contact only when all of them
//! allow it: wherever the debtor is, the law's hours hold there, and collection goes on in the
//! hours they share.
//!
//! Zones are looked up in the tz database compiled into the binary (`domain::time_zone`); a
//! zone it lacks is skipped as long as another of the country's resolves.

use std::collections::BTreeSet;
use std::sync::Mutex;

use jiff::tz::TimeZone;

use super::country_zones::{zones_of_country, CountryZones};
use super::phone_country::country_of_phone;
use crate::domain::Debtor;

/// One zone the engine reads local time on, with its name for the decision's words.
pub(super) struct LocalZone<'a> {
    pub name: &'a str,
    pub tz: TimeZone,
}

pub(super) struct Clocks<'a> {
    zones: Vec<LocalZone<'a>>,
    /// Why these zones and not the one on record alone; `None` when it is trusted.
    distrust: Option<String>,
}

impl<'a> Clocks<'a> {
    /// The clocks for a debtor; `Err` (words for `unknown_time_zone`) when their phone is in
    /// no country whose zones cobro knows, or none of them is in the tz database, so no zone
    /// can be checked (fail closed).
    pub fn of(debtor: &'a Debtor) -> Result<Self, String> {
        Self::resolving(debtor, &crate::domain::time_zone)
    }

    /// `of`, with the tz database lookup given (tests stand in for a host's older tzdata).
    fn resolving(
        debtor: &'a Debtor,
        get: &dyn Fn(&str) -> Option<TimeZone>,
    ) -> Result<Self, String> {
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
        let c = known.country;
        let own = get(recorded);
        if known.contains(recorded) {
            if let Some(tz) = own {
                return Ok(Clocks {
                    zones: vec![LocalZone { name: recorded, tz }],
                    distrust: None,
                });
            }
            // One of the country's, missing from this host's database: the country's others.
            return Ok(Clocks {
                zones: country_zones(known, recorded, get)?,
                distrust: Some(format!(
                    "the debtor's zone `{recorded}` is not in this tz database, so every zone \
                     of {c} is checked"
                )),
            });
        }
        let mut zones = country_zones(known, recorded, get)?;
        let distrust = match own.filter(|_| names_a_place(recorded)) {
            // The debtor may be where the record says: its hours must hold as well.
            Some(tz) => {
                zones.push(LocalZone { name: recorded, tz });
                format!(
                    "the debtor's zone `{recorded}` is not one of {c}'s, so every zone of {c} \
                     is checked, and `{recorded}` too"
                )
            }
            None => format!(
                "the debtor's zone `{recorded}` is not one of {c}'s, so every zone of {c} is \
                 checked"
            ),
        };
        Ok(Clocks {
            zones,
            distrust: Some(distrust),
        })
    }

    pub fn zones(&self) -> &[LocalZone<'a>] {
        &self.zones
    }

    /// Why the decision was read on more than the zone on record, when it was.
    pub fn distrust(&self) -> Option<&str> {
        self.distrust.as_deref()
    }
}

/// Every zone of the country that the tz database has; `Err` when it has none of them.
fn country_zones(
    known: &'static CountryZones,
    recorded: &str,
    get: &dyn Fn(&str) -> Option<TimeZone>,
) -> Result<Vec<LocalZone<'static>>, String> {
    let zones: Vec<LocalZone<'static>> = known
        .zones
        .iter()
        .filter_map(|name| match get(name) {
            Some(tz) => Some(LocalZone { name, tz }),
            None => {
                missing(name);
                None
            }
        })
        .collect();
    if zones.is_empty() {
        return Err(format!(
            "none of {}'s time zones is in this tz database, so the zone `{recorded}` cannot \
             be checked",
            known.country
        ));
    }
    Ok(zones)
}

/// Says once per process that a zone of the table is not in the tz database (older tzdata on
/// the host): decisions go on without it, and the operator should update tzdata.
fn missing(name: &'static str) {
    static SAID: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let first = SAID
        .lock()
        .map(|mut said| said.insert(name))
        .unwrap_or(true);
    if first {
        tracing::warn!(
            zone = name,
            "time zone not in the tz database (tzdata older than 2025b?); its country is \
             checked on its other zones"
        );
    }
}

/// Whether a zone names a place a debtor may be in. `UTC`, its synonyms, `Etc/*` (fixed offsets
/// and `Etc/Unknown`) and `Factory` name none: a CRM writes them as a default, so they say
/// nothing of where the debtor is. Old rule names (`EST5EDT`, `CET`) keep a region's clock, so
/// they count as a place.
fn names_a_place(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !(n.starts_with("etc/")
        || matches!(
            n.as_str(),
            "utc"
                | "uct"
                | "gmt"
                | "gmt0"
                | "gmt+0"
                | "gmt-0"
                | "greenwich"
                | "universal"
                | "zulu"
                | "factory"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::tests::debtor;

    fn names(c: &Clocks<'_>) -> Vec<String> {
        c.zones().iter().map(|z| z.name.to_string()).collect()
    }

    /// A host whose tzdata predates 2025b: no `America/Coyhaique`.
    fn old_tzdata(name: &str) -> Option<TimeZone> {
        (!name.eq_ignore_ascii_case("America/Coyhaique"))
            .then(|| crate::domain::time_zone(name))
            .flatten()
    }

    #[test]
    fn a_zone_missing_from_the_tz_database_is_skipped_while_another_resolves() {
        let chile = ["America/Santiago", "America/Punta_Arenas", "Pacific/Easter"];
        let d = debtor("UTC", "+56911112222", &[]);
        let c = Clocks::resolving(&d, &old_tzdata).unwrap();
        assert_eq!(names(&c), chile);
        let d = debtor("Europe/Madrid", "+56911112222", &[]);
        let c = Clocks::resolving(&d, &old_tzdata).unwrap();
        assert_eq!(names(&c), [&chile[..], &["Europe/Madrid"]].concat());
        // Recorded in the missing zone itself: read on the country's others.
        let d = debtor("America/Coyhaique", "+56911112222", &[]);
        let c = Clocks::resolving(&d, &old_tzdata).unwrap();
        assert_eq!(names(&c), chile);
        assert!(c.distrust().unwrap().contains("not in this tz database"));
        // With the zone in the database, all four.
        let d = debtor("UTC", "+56911112222", &[]);
        assert_eq!(Clocks::of(&d).unwrap().zones().len(), 4);
    }

    #[test]
    fn a_country_none_of_whose_zones_resolves_cannot_be_checked() {
        let d = debtor("America/Santiago", "+56911112222", &[]);
        let why = Clocks::resolving(&d, &|_| None).err().unwrap();
        assert!(why.contains("none of CL's time zones"), "{why}");
        let d = debtor("Europe/Madrid", "+56911112222", &[]);
        assert!(Clocks::resolving(&d, &|_| None).is_err());
    }

    #[test]
    fn utc_and_etc_name_no_place() {
        for z in [
            "UTC",
            "utc",
            "Etc/GMT+3",
            "etc/unknown",
            "GMT",
            "Zulu",
            "Universal",
        ] {
            assert!(!names_a_place(z), "{z}");
        }
        for z in ["America/New_York", "Europe/London", "Japan", "EST5EDT"] {
            assert!(names_a_place(z), "{z}");
        }
    }
}
