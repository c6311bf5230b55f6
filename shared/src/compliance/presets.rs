//! The jurisdiction presets, from ../shared/reference/collection-law.md (public sources,
//! November 2026; not legal advice: each needs local counsel's sign-off). Where the law is
//! silent or unclear the preset takes the stricter reading and says so in its sources
//! ("proxy", "proposal"). docs/compliance.md has the table.

use jiff::civil::{date, Weekday};
use std::sync::OnceLock;

use super::phone_country::country_of_phone;
use super::policy::{Cap, Policy, Range, StopTrigger, Windows};
use crate::domain::ChannelKind;

use ChannelKind::*;
use Weekday::*;

const MON_FRI: [Weekday; 5] = [Monday, Tuesday, Wednesday, Thursday, Friday];
const MON_SAT: [Weekday; 6] = [Monday, Tuesday, Wednesday, Thursday, Friday, Saturday];
const EVERY_DAY: [Weekday; 7] = [
    Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
];
/// Every channel cobro has writes: letters, SMS, e-mail and messaging apps in the laws' terms.
const WRITTEN: [ChannelKind; 3] = [Whatsapp, Sms, Email];
/// The presets' version: the date of the research note they are built from.
const VERSION: &str = "2026-11-01";
/// Where the reference gives no in-force date: the first year of cobro's holiday data (the
/// engine cannot decide earlier anyway). The laws themselves are older.
const DATA_START: jiff::civil::Date = date(2024, 1, 1);
/// Sources every preset shares.
const COMMON: [&str; 2] = [
    "WhatsApp Business Messaging Policy: an opt-in naming the business before any message [V]",
    "cobro product floor, not law: at most one message a local day; stop on lawsuit served, \
     insolvency or open dispute [P]",
];

fn base(
    id: &str,
    effective_from: jiff::civil::Date,
    sources: &[&str],
    windows: Windows,
    holidays: &[&str],
) -> Policy {
    Policy {
        id: id.into(),
        version: VERSION.into(),
        effective_from,
        effective_to: None,
        sources: sources
            .iter()
            .chain(COMMON.iter())
            .map(|s| s.to_string())
            .collect(),
        windows,
        holidays: holidays.iter().map(|s| s.to_string()).collect(),
        caps: vec![],
        min_days_between: 0,
        max_per_day: Some(1),
        one_channel_per_week: false,
        consent_required: vec![Whatsapp],
        opt_out_footer: false,
        stop_on: StopTrigger::ALL.to_vec(),
    }
}

fn all() -> Vec<Policy> {
    let cl = Policy {
        caps: vec![
            Cap {
                group: Some("written".into()),
                channels: WRITTEN.to_vec(),
                max: 2,
                days: 7,
            },
            // Calls or visits ≤ 1 and written ≤ 2: at most 3 touches a week in all.
            Cap {
                group: None,
                channels: vec![],
                max: 3,
                days: 7,
            },
        ],
        // "Separación de al menos dos días": after a Monday, Thursday (the stricter reading).
        min_days_between: 3,
        ..base(
            "CL",
            date(2021, 4, 20),
            &[
                "Ley 19.496 art. 37 as amended by Ley 21.062 (2018) and Ley 21.320 \
                 (DO 20-04-2021): letters, SMS, e-mail, WhatsApp at most 2 a week, at least \
                 two days apart; calls at most 1 a week; no contact on holidays [V]",
                "CPC art. 59 días y horas hábiles: 08:00-20:00, Monday to Saturday [V]",
                "SERNAC Res. Ex. 192/2019; stop once a collection suit is served or an \
                 insolvency procedure starts [V]",
                "Hours applied to SMS, e-mail and WhatsApp, not only calls and visits [P]",
                "Two days apart read as Monday then Thursday (3 local days) [P]",
            ],
            Windows::days(&MON_SAT, Range::hours(8, 20)),
            &["CL"],
        )
    };
    let co = Policy {
        one_channel_per_week: true,
        // Only channels the consumer authorised (Ley 2300 art. 2): a record for each.
        consent_required: WRITTEN.to_vec(),
        ..base(
            "CO",
            // In force October 2023 per the reference; the day is not given.
            date(2023, 10, 1),
            &[
                "Ley 2300 de 2023 (dejen de fregar) arts. 1-3, in force October 2023, upheld \
                 by the Corte Constitucional in 2024: Mon-Fri 07:00-19:00, Sat 08:00-15:00, \
                 never on Sundays or holidays [V]",
                "Ley 2300 art. 2: only channels the consumer authorised [V]",
                "Once direct contact is made: one channel a week, at most one contact a day; \
                 applied from the first contact, and as a rolling 7 days (stricter than a \
                 calendar week) [V, P]",
            ],
            Windows::days(&MON_FRI, Range::hours(7, 19)).and(&[Saturday], Range::hours(8, 15)),
            &["CO"],
        )
    };
    let pe = base(
        "PE",
        DATA_START,
        &[
            "Ley 29571 (Código de Protección y Defensa del Consumidor) arts. 61-62: no calls \
             or visits 20:00-07:00, none on Saturdays, Sundays or holidays [V]",
            "Applied to SMS, WhatsApp and e-mail too [P]",
        ],
        Windows::days(&MON_FRI, Range::hours(7, 20)),
        &["PE"],
    );
    let mx = base(
        "MX",
        DATA_START,
        &[
            "CONDUSEF disposiciones on collection agencies (DOF 2014): 07:00-22:00 in the \
             debtor's time zone [V]",
            "Profeco summary: business days only; weekends unsettled, the stricter reading \
             Monday to Friday [U]",
            "Official holidays blocked [P]",
        ],
        Windows::days(&MON_FRI, Range::hours(7, 22)),
        &["MX"],
    );
    let es = base(
        "ES",
        DATA_START,
        &[
            "No law specific to collection (Defensor del Pueblo, ANGECO) [V]",
            "RDLeg 1/2007 (TRLGDCU) art. 96.2, the rule for commercial calls, as a proxy: \
             09:00-21:00, Monday to Friday, not on holidays [V text, P]",
            "Ley 10/2025 (BOE 27-12-2025): personalised attention for vulnerable customers \
             [V]",
        ],
        Windows::days(&MON_FRI, Range::hours(9, 21)),
        &["ES"],
    );
    let br_sources = "CDC (Lei 8.078/1990) arts. 42, 42-A, 71: no ridicule, no threats, no \
                      interference with work, rest or leisure; no contact on holidays in \
                      every state law [V]";
    let br = base(
        "BR",
        DATA_START,
        &[
            br_sources,
            "No federal hours: the strictest state law listed (RJ Lei 7.868/18: Mon-Fri \
             09:00-19:00) for debtors whose state is unknown [P]",
        ],
        Windows::days(&MON_FRI, Range::hours(9, 19)),
        &["BR"],
    );
    let br_sp = base(
        "BR-SP",
        DATA_START,
        &[
            br_sources,
            "SP Lei 15.426/14 (another source: 431/13 [U]): Mon-Fri 08:00-20:00, Sat \
             08:00-14:00 [V]",
        ],
        Windows::days(&MON_FRI, Range::hours(8, 20)).and(&[Saturday], Range::hours(8, 14)),
        &["BR-SP"],
    );
    let br_rj = base(
        "BR-RJ",
        DATA_START,
        &[
            br_sources,
            "RJ Lei 7.868/18: Mon-Fri 09:00-19:00, no Saturday [V]",
        ],
        Windows::days(&MON_FRI, Range::hours(9, 19)),
        &["BR-RJ"],
    );
    let ar = base(
        "AR",
        DATA_START,
        &[
            "Ley 24.240 art. 8 bis (trato digno); BCRA Protección de usuarios §2.6 [V]",
            "No national hours: the Córdoba bill (Mon-Fri 08:00-20:00, Sat 08:00-12:00, none \
             on Sundays or holidays) as a proxy [V bill, P]",
            "Buenos Aires City law: no repeated, harassing messages [V]",
        ],
        Windows::days(&MON_FRI, Range::hours(8, 20)).and(&[Saturday], Range::hours(8, 12)),
        &["AR"],
    );
    let us = Policy {
        caps: vec![Cap {
            group: None,
            channels: vec![],
            max: 7,
            days: 7,
        }],
        opt_out_footer: true,
        ..base(
            "US",
            date(2021, 11, 30),
            &[
                "Regulation F 12 CFR 1006.6(b)(1)(i), in force 30-11-2021: 08:00-21:00 at the \
                 consumer's location [V]",
                "12 CFR 1006.14(b)(2): more than 7 call attempts in 7 days presumed a \
                 violation; applied to every channel together, as the CFPB weighs the \
                 combined pattern [V, P]",
                "12 CFR 1006.6(e): every e-mail or text carries a clear opt-out [V]",
                "FDCPA 15 USC 1692c, 1692d [V]",
                "No federal holiday rule; federal holidays blocked, since Sunday or holiday \
                 contact can rebut the safe harbour [P]",
            ],
            Windows::days(&EVERY_DAY, Range::hours(8, 21)),
            &["US"],
        )
    };
    let gb = base(
        "GB",
        date(2021, 5, 4),
        &[
            "FCA CONC 7.3, 7.9, 7.10 and Consumer Duty (PRIN 2A): no contact at \
             unreasonable times, respect requests about when and how [V]",
            "No fixed hours: the industry norm 08:00-21:00 [R]; bank holidays blocked [P]",
            "Debt Respite Scheme (Breathing Space) Regulations, SI 2020/1311, in force \
             04-05-2021: no contact asking for payment during the moratorium, a pause on \
             the account [V]",
        ],
        Windows::days(&EVERY_DAY, Range::hours(8, 21)),
        &["GB"],
    );
    vec![cl, co, pe, mx, es, br, br_sp, br_rj, ar, us, gb]
}

/// Every preset, validated once.
pub fn presets() -> &'static [Policy] {
    static PRESETS: OnceLock<Vec<Policy>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let all = all();
        for p in &all {
            if let Err(e) = p.validate() {
                panic!("preset {} is invalid: {e}", p.id);
            }
        }
        all
    })
}

pub fn preset(id: &str) -> Option<&'static Policy> {
    presets().iter().find(|p| p.id == id)
}

/// The jurisdiction a phone number is in, as precisely as cobro's presets distinguish:
/// Brazilian area codes give the state (São Paulo 11–19, Rio de Janeiro 21–24), and US
/// territories (Puerto Rico, Guam …) are under US federal law. `None` when the number is in no
/// country with a preset, or in no country cobro can place.
pub fn jurisdiction_of_phone(e164: &str) -> Option<&'static str> {
    let country = country_of_phone(e164)?;
    let jurisdiction = match country {
        "PR" | "VI" | "GU" | "MP" | "AS" => "US",
        "BR" => {
            let area: u32 = e164.get(3..5)?.parse().ok()?;
            match area {
                11..=19 => "BR-SP",
                21..=24 => "BR-RJ",
                _ => "BR",
            }
        }
        other => other,
    };
    preset(jurisdiction).map(|p| p.id.as_str())
}

/// Why no policy applies to a debtor: every case is a no send (fail closed), and the decision
/// records which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPolicy {
    /// No preset for the tenant's own country.
    TenantCountry(String),
    /// The debtor's phone is in a country no preset covers (`+593…`: Ecuador).
    DebtorCountry { phone: String, country: String },
    /// The debtor's phone is in no country cobro knows (an unassigned or global code).
    UnplacedPhone(String),
}

impl NoPolicy {
    /// The rule id a decision records: `no_policy` for the tenant, `unknown_jurisdiction` for
    /// the debtor.
    pub fn rule(&self) -> &'static str {
        match self {
            NoPolicy::TenantCountry(_) => "no_policy",
            _ => "unknown_jurisdiction",
        }
    }
}

/// `[rule] reason`, as a compliance verdict is written.
impl std::fmt::Display for NoPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] ", self.rule())?;
        match self {
            NoPolicy::TenantCountry(c) => write!(f, "no compliance preset for {c}"),
            NoPolicy::DebtorCountry { phone, country } => write!(
                f,
                "the debtor's phone {phone} is in {country}, which has no compliance preset"
            ),
            NoPolicy::UnplacedPhone(phone) => write!(
                f,
                "the debtor's phone {phone} is in no country cobro can place"
            ),
        }?;
        write!(f, ": nothing is sent (fail closed)")
    }
}

/// The policy for a debtor: the tenant's country's preset and the debtor's own (by phone),
/// composed as the strictest of both, then the tenant's own tightening. No policy (no send)
/// when either jurisdiction has no preset: a debtor abroad is protected by their own country's
/// law, which cobro cannot apply without its preset.
pub fn resolve_policy(
    tenant_country: &str,
    debtor_phone: &str,
    tenant_policy: Option<&Policy>,
) -> Result<Policy, NoPolicy> {
    let mut policy = preset(tenant_country)
        .ok_or_else(|| NoPolicy::TenantCountry(tenant_country.to_string()))?
        .clone();
    let local = jurisdiction_of_phone(debtor_phone)
        .and_then(preset)
        .ok_or_else(|| match country_of_phone(debtor_phone) {
            Some(country) => NoPolicy::DebtorCountry {
                phone: debtor_phone.to_string(),
                country: country.to_string(),
            },
            None => NoPolicy::UnplacedPhone(debtor_phone.to_string()),
        })?;
    if local.id != policy.id {
        policy = policy.compose(local);
    }
    Ok(match tenant_policy {
        Some(own) => policy.compose(own),
        None => policy,
    })
}

/// [`resolve_policy`] without the reason: `None` is no send.
pub fn policy_for(
    tenant_country: &str,
    debtor_phone: &str,
    tenant_policy: Option<&Policy>,
) -> Option<Policy> {
    resolve_policy(tenant_country, debtor_phone, tenant_policy).ok()
}

/// Several presets at once (the debtor's address, phone and the tenant's country), composed
/// as the strictest of each rule. `Err` names the first id with no preset (fail closed).
pub fn compose_presets(ids: &[&str]) -> Result<Policy, String> {
    let mut out: Option<Policy> = None;
    for id in ids {
        let p = preset(id).ok_or_else(|| format!("no compliance preset `{id}`"))?;
        out = Some(match out {
            Some(acc) if acc.id.split('+').any(|x| x == p.id) => acc,
            Some(acc) => acc.compose(p),
            None => p.clone(),
        });
    }
    out.ok_or_else(|| "no jurisdiction given".to_string())
}
