//! The IANA time zones of each country cobro has a preset for, so the engine can tell whether
//! the zone on a debtor's record is one their phone's country could be in. From the tz
//! database's zone.tab (2025b): every zone of the country, and the old names (`backward`
//! links such as `US/Eastern`, `Brazil/East`) that are the same clocks. US territories keep
//! their own ISO codes and clocks: US federal law applies there, but not Eastern time.

/// A country's zones: `zones` are the distinct clocks (what the engine reads when it cannot
/// trust the record); `aliases` are other names for some of them.
#[derive(Debug)]
pub struct CountryZones {
    pub country: &'static str,
    pub zones: &'static [&'static str],
    pub aliases: &'static [&'static str],
}

impl CountryZones {
    /// Whether `name` is one of the country's zones, under any of its names, in any case (the
    /// tz database's lookup ignores case, so a record may say `america/santiago`).
    pub fn contains(&self, name: &str) -> bool {
        let same = |z: &&str| z.eq_ignore_ascii_case(name);
        self.zones.iter().any(same) || self.aliases.iter().any(same)
    }
}

/// The zones of an ISO 3166-1 alpha-2 country; `None` for a country cobro has no table for.
pub fn zones_of_country(country: &str) -> Option<&'static CountryZones> {
    COUNTRY_ZONES.iter().find(|c| c.country == country)
}

const COUNTRY_ZONES: &[CountryZones] = &[
    CountryZones {
        country: "AR",
        zones: &[
            "America/Argentina/Buenos_Aires",
            "America/Argentina/Cordoba",
            "America/Argentina/Salta",
            "America/Argentina/Jujuy",
            "America/Argentina/Tucuman",
            "America/Argentina/Catamarca",
            "America/Argentina/La_Rioja",
            "America/Argentina/San_Juan",
            "America/Argentina/Mendoza",
            "America/Argentina/San_Luis",
            "America/Argentina/Rio_Gallegos",
            "America/Argentina/Ushuaia",
        ],
        aliases: &[
            "America/Buenos_Aires",
            "America/Cordoba",
            "America/Rosario",
            "America/Jujuy",
            "America/Catamarca",
            "America/Argentina/ComodRivadavia",
            "America/Mendoza",
        ],
    },
    CountryZones {
        country: "BR",
        zones: &[
            "America/Noronha",
            "America/Belem",
            "America/Fortaleza",
            "America/Recife",
            "America/Araguaina",
            "America/Maceio",
            "America/Bahia",
            "America/Sao_Paulo",
            "America/Campo_Grande",
            "America/Cuiaba",
            "America/Santarem",
            "America/Porto_Velho",
            "America/Boa_Vista",
            "America/Manaus",
            "America/Eirunepe",
            "America/Rio_Branco",
        ],
        aliases: &[
            "Brazil/DeNoronha",
            "Brazil/East",
            "Brazil/West",
            "Brazil/Acre",
            "America/Porto_Acre",
        ],
    },
    CountryZones {
        country: "CL",
        zones: &[
            "America/Santiago",
            "America/Coyhaique",
            "America/Punta_Arenas",
            "Pacific/Easter",
        ],
        aliases: &["Chile/Continental", "Chile/EasterIsland"],
    },
    CountryZones {
        country: "CO",
        zones: &["America/Bogota"],
        aliases: &[],
    },
    CountryZones {
        country: "ES",
        zones: &["Europe/Madrid", "Africa/Ceuta", "Atlantic/Canary"],
        aliases: &[],
    },
    CountryZones {
        country: "GB",
        zones: &["Europe/London"],
        aliases: &["GB", "GB-Eire", "Europe/Belfast"],
    },
    CountryZones {
        country: "MX",
        zones: &[
            "America/Mexico_City",
            "America/Cancun",
            "America/Merida",
            "America/Monterrey",
            "America/Matamoros",
            "America/Chihuahua",
            "America/Ciudad_Juarez",
            "America/Ojinaga",
            "America/Mazatlan",
            "America/Bahia_Banderas",
            "America/Hermosillo",
            "America/Tijuana",
        ],
        aliases: &[
            "Mexico/General",
            "Mexico/BajaSur",
            "Mexico/BajaNorte",
            "America/Ensenada",
            "America/Santa_Isabel",
        ],
    },
    CountryZones {
        country: "PE",
        zones: &["America/Lima"],
        aliases: &[],
    },
    CountryZones {
        country: "US",
        zones: &[
            "America/New_York",
            "America/Detroit",
            "America/Kentucky/Louisville",
            "America/Kentucky/Monticello",
            "America/Indiana/Indianapolis",
            "America/Indiana/Vincennes",
            "America/Indiana/Winamac",
            "America/Indiana/Marengo",
            "America/Indiana/Petersburg",
            "America/Indiana/Vevay",
            "America/Chicago",
            "America/Indiana/Tell_City",
            "America/Indiana/Knox",
            "America/Menominee",
            "America/North_Dakota/Center",
            "America/North_Dakota/New_Salem",
            "America/North_Dakota/Beulah",
            "America/Denver",
            "America/Boise",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "America/Juneau",
            "America/Sitka",
            "America/Metlakatla",
            "America/Yakutat",
            "America/Nome",
            "America/Adak",
            "Pacific/Honolulu",
        ],
        aliases: &[
            "US/Eastern",
            "US/Michigan",
            "America/Louisville",
            "US/East-Indiana",
            "America/Indianapolis",
            "America/Fort_Wayne",
            "US/Central",
            "US/Indiana-Starke",
            "America/Knox_IN",
            "Navajo",
            "US/Mountain",
            "America/Shiprock",
            "US/Arizona",
            "US/Pacific",
            "US/Alaska",
            "US/Aleutian",
            "America/Atka",
            "US/Hawaii",
        ],
    },
    CountryZones {
        country: "PR",
        zones: &["America/Puerto_Rico"],
        aliases: &[],
    },
    CountryZones {
        country: "VI",
        zones: &["America/St_Thomas"],
        aliases: &["America/Virgin"],
    },
    CountryZones {
        country: "GU",
        zones: &["Pacific/Guam"],
        aliases: &[],
    },
    CountryZones {
        country: "MP",
        zones: &["Pacific/Saipan"],
        aliases: &[],
    },
    CountryZones {
        country: "AS",
        zones: &["Pacific/Pago_Pago"],
        aliases: &["US/Samoa", "Pacific/Samoa"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::presets::presets;

    #[test]
    fn every_zone_is_in_the_bundled_database_once() {
        // The bundled copy, not the host's: the table follows tzdb 2025b, which a host's older
        // tzdata may not (the engine skips what it lacks).
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        let mut seen = std::collections::HashSet::new();
        for c in COUNTRY_ZONES {
            for name in c.zones.iter().chain(c.aliases) {
                assert!(bundled.get(name).is_ok(), "{}: {name}", c.country);
                assert!(seen.insert(*name), "{name} twice");
            }
        }
    }

    #[test]
    fn every_preset_country_has_its_zones() {
        for p in presets() {
            let country = p.id.split('-').next().unwrap();
            let zones = zones_of_country(country).unwrap_or_else(|| panic!("{}", p.id));
            assert!(!zones.zones.is_empty());
        }
        assert!(zones_of_country("EC").is_none());
        let cl = zones_of_country("CL").unwrap();
        assert!(cl.contains("America/Santiago") && cl.contains("Chile/Continental"));
        assert!(cl.contains("america/santiago"));
        assert!(!cl.contains("Etc/GMT+3") && !cl.contains("UTC"));
    }
}
