//! The jurisdiction presets, from ../shared/reference/collection-law.md (public sources,
//! November 2026; not legal advice: each needs local counsel's sign-off). Where the law is
//! silent or unclear the preset takes the stricter reading and says so in its sources
//! ("proxy", "proposal"). docs/compliance.md has the table.

use jiff::civil::{date, Weekday};
use std::sync::OnceLock;

use super::policy::{Cap, Policy, Range, StopTrigger, Windows};
use crate::domain::ChannelKind;

use ChannelKind::*;
use Weekday::*;

const MON_FRI: [Weekday; 5] = [Monday, Tuesday, Wednesday, Thursday, Friday];
const MON_SAT: [Weekday; 6] = [Monday, Tuesday, Wednesday, Thursday, Friday, Saturday];
const EVERY_DAY: [Weekday; 7] = [
    Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
];
const ALL_STOPS: [StopTrigger; 3] = [
    StopTrigger::LawsuitServed,
    StopTrigger::Insolvency,
    StopTrigger::DisputeOpen,
];
/// Every channel cobro has writes: letters, SMS, e-mail and messaging apps in the laws' terms.
const WRITTEN: [ChannelKind; 3] = [Whatsapp, Sms, Email];

fn base(id: &str, sources: &[&str], windows: Windows, holidays: &[&str]) -> Policy {
    Policy {
        id: id.into(),
        version: "2026-11-01".into(),
        effective_from: date(2026, 11, 1),
        effective_to: None,
        sources: sources.iter().map(|s| s.to_string()).collect(),
        windows,
        holidays: holidays.iter().map(|s| s.to_string()).collect(),
        caps: vec![],
        min_days_between: 0,
        // Not law anywhere cobro knows of, but a product floor: one message a day at most.
        max_per_day: Some(1),
        one_channel_per_week: false,
        // WhatsApp's Business Messaging Policy: an opt-in naming the business, everywhere.
        consent_required: vec![Whatsapp],
        opt_out_footer: false,
        stop_on: ALL_STOPS.to_vec(),
    }
}

fn all() -> Vec<Policy> {
    let cl = Policy {
        caps: vec![
            Cap {
                channels: WRITTEN.to_vec(),
                max: 2,
                days: 7,
            },
            Cap {
                channels: vec![],
                max: 3,
                days: 7,
            },
        ],
        // "Separación de al menos dos días": after a Monday, Thursday (the stricter reading).
        min_days_between: 3,
        ..base(
            "CL",
            &[
                "Ley 19.496 art. 37 (Ley 21.062, Ley 21.320)",
                "CPC art. 59 (días y horas hábiles)",
                "SERNAC Res. Ex. 192/2019",
            ],
            Windows::days(&MON_SAT, Range::hours(8, 20)),
            &["CL"],
        )
    };
    let co = Policy {
        one_channel_per_week: true,
        // Only channels the consumer authorised (Ley 2300 art. 2).
        consent_required: WRITTEN.to_vec(),
        ..base(
            "CO",
            &["Ley 2300 de 2023 arts. 1-3"],
            Windows::days(&MON_FRI, Range::hours(7, 19)).and(&[Saturday], Range::hours(8, 15)),
            &["CO"],
        )
    };
    let pe = base(
        "PE",
        &["Ley 29571 arts. 61-62 (calls and visits; applied to every channel: proposal)"],
        Windows::days(&MON_FRI, Range::hours(7, 20)),
        &["PE"],
    );
    let mx = base(
        "MX",
        &[
            "CONDUSEF disposiciones sobre despachos de cobranza (hours)",
            "Profeco summary (business days; weekends unclear: the stricter reading)",
        ],
        Windows::days(&MON_FRI, Range::hours(7, 22)),
        &["MX"],
    );
    let es = base(
        "ES",
        &[
            "RDLeg 1/2007 art. 96.2 as a proxy (no collection-specific law)",
            "Ley 10/2025",
        ],
        Windows::days(&MON_FRI, Range::hours(9, 21)),
        &["ES"],
    );
    let br = base(
        "BR",
        &[
            "CDC (Lei 8.078/1990) arts. 42, 42-A, 71",
            "No federal hours: the strictest state law (RJ Lei 7.868/18) as the default",
        ],
        Windows::days(&MON_FRI, Range::hours(9, 19)),
        &["BR"],
    );
    let br_sp = base(
        "BR-SP",
        &["CDC arts. 42, 42-A, 71", "SP Lei 15.426/14"],
        Windows::days(&MON_FRI, Range::hours(8, 20)).and(&[Saturday], Range::hours(8, 14)),
        &["BR-SP"],
    );
    let br_rj = base(
        "BR-RJ",
        &["CDC arts. 42, 42-A, 71", "RJ Lei 7.868/18"],
        Windows::days(&MON_FRI, Range::hours(9, 19)),
        &["BR-RJ"],
    );
    let ar = base(
        "AR",
        &[
            "Ley 24.240 art. 8 bis (trato digno)",
            "No national hours: the Córdoba bill (Mon-Fri 08-20, Sat 08-12) as a proxy",
        ],
        Windows::days(&MON_FRI, Range::hours(8, 20)).and(&[Saturday], Range::hours(8, 12)),
        &["AR"],
    );
    let us = Policy {
        caps: vec![Cap {
            channels: vec![],
            max: 7,
            days: 7,
        }],
        opt_out_footer: true,
        ..base(
            "US",
            &[
                "FDCPA 15 USC 1692c, 1692d",
                "Regulation F 12 CFR 1006.6(b)(1)(i), 1006.6(e), 1006.14(b)(2)",
            ],
            Windows::days(&EVERY_DAY, Range::hours(8, 21)),
            &["US"],
        )
    };
    let gb = base(
        "GB",
        &[
            "FCA CONC 7.3, 7.9, 7.10; Consumer Duty",
            "No fixed hours: the industry norm 08-21 (proposal)",
            "Breathing Space SI 2020/1311 (a pause on the account)",
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
/// Brazilian area codes give the state (São Paulo 11–19, Rio de Janeiro 21–24).
pub fn jurisdiction_of_phone(e164: &str) -> Option<&'static str> {
    let d = e164.strip_prefix('+')?;
    let prefixes: [(&str, &str); 9] = [
        ("56", "CL"),
        ("57", "CO"),
        ("51", "PE"),
        ("52", "MX"),
        ("34", "ES"),
        ("54", "AR"),
        ("44", "GB"),
        ("55", "BR"),
        ("1", "US"),
    ];
    let (prefix, country) = prefixes.iter().find(|(p, _)| d.starts_with(p))?;
    if *country == "BR" {
        let area: u32 = d[prefix.len()..].get(..2)?.parse().ok()?;
        return Some(match area {
            11..=19 => "BR-SP",
            21..=24 => "BR-RJ",
            _ => "BR",
        });
    }
    Some(country)
}

/// The policy for a debtor: the tenant's country's preset and the debtor's own (by phone),
/// composed as the strictest of both, then the tenant's own tightening. `None` when no preset
/// covers the tenant's country: no send (fail closed).
pub fn policy_for(
    tenant_country: &str,
    debtor_phone: &str,
    tenant_policy: Option<&Policy>,
) -> Option<Policy> {
    let mut policy = preset(tenant_country)?.clone();
    if let Some(local) = jurisdiction_of_phone(debtor_phone).and_then(preset) {
        if local.id != policy.id {
            policy = policy.compose(local);
        }
    }
    Some(match tenant_policy {
        Some(own) => policy.compose(own),
        None => policy,
    })
}
