//! Table tests for each preset's edge cases, composition, tighten-only and loading; property
//! tests over random debtors, zones, clocks (DST changes included) and histories, checked
//! against an independent reading of the rules (`breaks`): no contact the engine allows ever
//! breaks a rule, none earlier would have been allowed, and a decision asked again at the
//! instant it names says the same.

use jiff::{civil::date, tz::TimeZone, SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::domain::{ChannelKind, Consent, Debtor, DebtorId, Language, Phone, TenantId, Zone};

use ChannelKind::*;

pub(super) fn debtor(zone: &str, phone: &str, consents: &[(ChannelKind, bool)]) -> Debtor {
    debtor_at(
        zone,
        phone,
        &consents
            .iter()
            .map(|(c, g)| (*c, *g, ts("2026-01-01T00:00:00Z")))
            .collect::<Vec<_>>(),
    )
}

fn debtor_at(zone: &str, phone: &str, consents: &[(ChannelKind, bool, Timestamp)]) -> Debtor {
    Debtor {
        tenant: TenantId::parse("t").unwrap(),
        id: DebtorId::parse("d").unwrap(),
        name: "Ana".into(),
        phone: Phone::parse(phone).unwrap(),
        email: Some("ana@example.com".into()),
        time_zone: Zone::parse(zone).unwrap(),
        language: Language::Es,
        consents: consents
            .iter()
            .map(|(c, g, at)| Consent {
                channel: *c,
                granted: *g,
                at: *at,
                source: "crm".into(),
            })
            .collect(),
        preferences: Default::default(),
        holds: Default::default(),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn local(t: Timestamp, zone: &str) -> String {
    t.to_zoned(TimeZone::get(zone).unwrap())
        .strftime("%a %Y-%m-%d %H:%M")
        .to_string()
}

fn contact(at: &str, channel: ChannelKind) -> PastContact {
    PastContact {
        at: ts(at),
        channel,
    }
}

fn decide(
    policy: &Policy,
    d: &Debtor,
    history: &[PastContact],
    channels: &[ChannelKind],
    now: &str,
) -> Decision {
    decide_with(policy, d, &Holds::default(), history, channels, ts(now))
}

fn decide_with(
    policy: &Policy,
    d: &Debtor,
    holds: &Holds,
    history: &[PastContact],
    channels: &[ChannelKind],
    now: Timestamp,
) -> Decision {
    evaluate(
        policy,
        &Facts {
            debtor: d,
            holds,
            history,
            channels,
            now,
        },
    )
}

fn contact_at(dec: &Decision) -> (ChannelKind, Timestamp) {
    match dec {
        Decision::Contact { channel, at, .. } => (*channel, *at),
        other => panic!("expected a contact: {other:?}"),
    }
}

fn rule(dec: &Decision) -> String {
    dec.rule().unwrap_or_default().to_string()
}

fn next_possible(dec: &Decision) -> Option<Timestamp> {
    match dec {
        Decision::Blocked { next_possible, .. } => *next_possible,
        other => panic!("expected a block: {other:?}"),
    }
}

const SANTIAGO: &str = "America/Santiago";
const NEW_YORK: &str = "America/New_York";

#[test]
fn every_preset_is_valid_sourced_and_in_force_through_the_holiday_data() {
    let ids: Vec<&str> = presets().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["CL", "CO", "PE", "MX", "ES", "BR", "BR-SP", "BR-RJ", "AR", "US", "GB"]
    );
    for p in presets() {
        p.validate().unwrap();
        assert!(p.sources.len() >= 3, "{}", p.id);
        assert!(
            p.sources.iter().any(|s| s.contains("[V")),
            "{}: at least one verified source",
            p.id
        );
        assert!(p.in_force(date(2024, 1, 1)) && p.in_force(date(2030, 12, 31)));
        assert!(p.consent_required.contains(&Whatsapp), "{}: opt-in", p.id);
        assert_eq!(
            p.holidays,
            std::slice::from_ref(&p.id),
            "{}: its own calendar",
            p.id
        );
        assert_eq!(p.stop_on.len(), 3);
    }
    assert_eq!(preset("CL").unwrap().effective_from, date(2021, 4, 20));
    assert_eq!(preset("US").unwrap().effective_from, date(2021, 11, 30));
    assert_eq!(preset("GB").unwrap().effective_from, date(2021, 5, 4));
}

#[test]
fn chile_mon_sat_08_20_two_days_apart_two_written_a_week_no_holidays() {
    let cl = preset("CL").unwrap();
    let d = debtor(SANTIAGO, "+56911112222", &[(Whatsapp, true), (Sms, true)]);
    // Sunday: Monday 08:00 local.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-15T15:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Mon 2026-03-16 08:00");
    assert_eq!(rule(&dec), "window");
    // Monday 19:59 is in; 20:00 is out, so Tuesday 08:00.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-16T22:59:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-16T22:59:00Z"));
    assert_eq!(rule(&dec), "");
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-16T23:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Tue 2026-03-17 08:00");
    // Saturday is a working day in Chile.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-21T13:00:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-21T13:00:00Z"));
    // Monday's contact: the next on Thursday, not Wednesday (two clear days between).
    let monday = contact("2026-03-16T13:00:00Z", Whatsapp);
    let dec = decide(cl, &d, &[monday], &[Whatsapp, Sms], "2026-03-17T13:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Thu 2026-03-19 08:00");
    assert_eq!(rule(&dec), "gap");
    // Monday 10:00 and Thursday 10:00: the gap ends Sunday (closed), Monday 08:00 is still
    // inside the week of Monday's message, so the third waits until Monday 10:00.
    let thursday = contact("2026-03-19T13:00:00Z", Sms);
    let dec = decide(
        cl,
        &d,
        &[monday, thursday],
        &[Whatsapp],
        "2026-03-21T13:00:00Z",
    );
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Mon 2026-03-23 10:00");
    assert_eq!(rule(&dec), "gap", "the first rule that pushed it");
    let dec = decide(
        cl,
        &d,
        &[monday, thursday],
        &[Whatsapp],
        "2026-03-23T11:00:00Z",
    );
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Mon 2026-03-23 10:00");
    assert_eq!(rule(&dec), "cap:written:7d");
    // Holidays: Labour Day (Friday), and Fiestas Patrias 18-19 September (Friday-Saturday).
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-05-01T14:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Sat 2026-05-02 08:00");
    assert_eq!(rule(&dec), "holiday");
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-09-18T14:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Mon 2026-09-21 08:00");
    match &dec {
        Decision::Contact {
            waited_for: Some(v),
            opt_out_text,
            policy,
            ..
        } => {
            assert!(
                v.reason.contains("2026-09-18") && v.reason.contains("CL"),
                "{v:?}"
            );
            assert!(!opt_out_text);
            assert_eq!(policy, "CL@2026-11-01");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn colombia_saturday_08_15_authorised_channels_one_channel_a_week() {
    let co = preset("CO").unwrap();
    let z = "America/Bogota";
    let d = debtor(z, "+573001112222", &[(Whatsapp, true), (Sms, true)]);
    // Weekdays 07-19.
    let dec = decide(co, &d, &[], &[Sms], "2026-03-18T11:59:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Wed 2026-03-18 07:00");
    // Saturday 14:59 is allowed, 15:00 is not: Sunday never, and Monday 2026-03-23 is Saint
    // Joseph's Day (observed), so Tuesday 07:00.
    let dec = decide(co, &d, &[], &[Whatsapp], "2026-03-21T19:59:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Sat 2026-03-21 14:59");
    let dec = decide(co, &d, &[], &[Whatsapp], "2026-03-21T20:00:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Tue 2026-03-24 07:00");
    // WhatsApp on Monday: SMS only once no other channel is in the last 7 days.
    let used = contact("2026-03-16T15:00:00Z", Whatsapp);
    let dec = decide(co, &d, &[used], &[Sms], "2026-03-18T15:00:00Z");
    assert_eq!(rule(&dec), "one_channel_per_week");
    assert_eq!(
        contact_at(&dec).1,
        ts("2026-03-24T12:00:00Z"),
        "Monday 23 is a holiday"
    );
    // Preferring SMS but allowed WhatsApp: WhatsApp today.
    let dec = decide(co, &d, &[used], &[Sms, Whatsapp], "2026-03-18T15:00:00Z");
    assert_eq!(contact_at(&dec), (Whatsapp, ts("2026-03-18T15:00:00Z")));
    // One a day: a second message on Monday waits for Tuesday.
    let dec = decide(co, &d, &[used], &[Whatsapp], "2026-03-16T18:00:00Z");
    assert_eq!(rule(&dec), "max_per_day");
    assert_eq!(local(contact_at(&dec).1, z), "Tue 2026-03-17 07:00");
    // Only authorised channels: no e-mail record, no e-mail.
    let dec = decide(co, &d, &[], &[Email], "2026-03-18T15:00:00Z");
    assert_eq!(rule(&dec), "consent");
    assert_eq!(next_possible(&dec), None);
}

#[test]
fn peru_mexico_brazil_argentina_spain_britain_hours_and_days() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // (preset, zone, phone, now (UTC), first allowed local instant)
        (
            "PE",
            "America/Lima",
            "+51911112222",
            "2026-03-21T15:00:00Z",
            "Mon 2026-03-23 07:00",
        ),
        (
            "PE",
            "America/Lima",
            "+51911112222",
            "2026-03-20T00:59:00Z",
            "Thu 2026-03-19 19:59",
        ),
        (
            "PE",
            "America/Lima",
            "+51911112222",
            "2026-03-20T01:00:00Z",
            "Fri 2026-03-20 07:00",
        ),
        (
            "MX",
            "America/Mexico_City",
            "+525512345678",
            "2026-03-18T03:59:00Z",
            "Tue 2026-03-17 21:59",
        ),
        (
            "MX",
            "America/Mexico_City",
            "+525512345678",
            "2026-03-18T04:00:00Z",
            "Wed 2026-03-18 07:00",
        ),
        (
            "MX",
            "America/Mexico_City",
            "+525512345678",
            "2026-03-21T16:00:00Z",
            "Mon 2026-03-23 07:00",
        ),
        (
            "BR-SP",
            "America/Sao_Paulo",
            "+5511999990000",
            "2026-03-21T16:59:00Z",
            "Sat 2026-03-21 13:59",
        ),
        (
            "BR-SP",
            "America/Sao_Paulo",
            "+5511999990000",
            "2026-03-21T17:00:00Z",
            "Mon 2026-03-23 08:00",
        ),
        (
            "BR-RJ",
            "America/Sao_Paulo",
            "+5521999990000",
            "2026-03-21T12:00:00Z",
            "Mon 2026-03-23 09:00",
        ),
        (
            "BR-RJ",
            "America/Sao_Paulo",
            "+5521999990000",
            "2026-03-23T22:00:00Z",
            "Tue 2026-03-24 09:00",
        ),
        // 9 July: São Paulo's Constitutionalist Revolution, a state holiday, not Rio's.
        (
            "BR-SP",
            "America/Sao_Paulo",
            "+5511999990000",
            "2026-07-09T13:00:00Z",
            "Fri 2026-07-10 08:00",
        ),
        (
            "BR-RJ",
            "America/Sao_Paulo",
            "+5521999990000",
            "2026-07-09T13:00:00Z",
            "Thu 2026-07-09 10:00",
        ),
        // Monday 23 March is a bridge holiday and Tuesday 24 the Day of Remembrance.
        (
            "AR",
            "America/Argentina/Buenos_Aires",
            "+5491112345678",
            "2026-03-21T15:00:00Z",
            "Wed 2026-03-25 08:00",
        ),
        (
            "AR",
            "America/Argentina/Buenos_Aires",
            "+5491112345678",
            "2026-03-14T14:59:00Z",
            "Sat 2026-03-14 11:59",
        ),
        (
            "ES",
            "Europe/Madrid",
            "+34612345678",
            "2026-03-16T07:00:00Z",
            "Mon 2026-03-16 09:00",
        ),
        (
            "ES",
            "Europe/Madrid",
            "+34612345678",
            "2026-12-25T10:00:00Z",
            "Mon 2026-12-28 09:00",
        ),
        (
            "GB",
            "Europe/London",
            "+447700900123",
            "2026-03-15T12:00:00Z",
            "Sun 2026-03-15 12:00",
        ),
        (
            "GB",
            "Europe/London",
            "+447700900123",
            "2026-12-25T12:00:00Z",
            "Sun 2026-12-27 08:00",
        ),
    ];
    for (id, zone, phone, now, expected) in cases {
        let p = preset(id).unwrap();
        let d = debtor(zone, phone, &[(Sms, true)]);
        let dec = decide(p, &d, &[], &[Sms], now);
        let got = match &dec {
            Decision::Contact { at, .. } => local(*at, zone),
            other => format!("{other:?}"),
        };
        assert_eq!(&got, expected, "{id} at {now}: {dec:?}");
    }
}

#[test]
fn united_states_seven_in_seven_and_the_opt_out_line() {
    let us = preset("US").unwrap();
    let d = debtor(NEW_YORK, "+12125551234", &[(Sms, true)]);
    let seven: Vec<PastContact> = (0..7)
        .map(|i| PastContact {
            at: ts("2026-03-10T14:00:00Z")
                .checked_add(SignedDuration::from_hours(24 * i))
                .unwrap(),
            channel: if i % 2 == 0 { Sms } else { Email },
        })
        .collect();
    // 7 in the rolling 7 days (one a day): the 8th waits until the oldest leaves the window.
    let dec = decide(us, &d, &seven, &[Sms], "2026-03-17T13:00:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-17T14:00:00Z"));
    assert_eq!(rule(&dec), "cap:all:7d");
    assert!(matches!(
        dec,
        Decision::Contact {
            opt_out_text: true,
            ..
        }
    ));
    // Six: the 7th goes now.
    let dec = decide(us, &d, &seven[1..], &[Sms], "2026-03-17T13:00:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-17T13:00:00Z"));
    // 08:00-21:00 every day, Sundays too, but not on federal holidays.
    let dec = decide(us, &d, &[], &[Sms], "2026-03-22T00:59:00Z");
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Sat 2026-03-21 20:59");
    let dec = decide(us, &d, &[], &[Sms], "2026-03-22T15:00:00Z");
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Sun 2026-03-22 11:00");
    let dec = decide(us, &d, &[], &[Sms], "2026-07-03T15:00:00Z");
    assert_eq!(
        rule(&dec),
        "holiday",
        "Independence Day observed on Friday 3 July"
    );
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Sun 2026-07-05 08:00");
}

#[test]
fn dst_changes_keep_the_local_window() {
    let us = preset("US").unwrap();
    let d = debtor(NEW_YORK, "+12125551234", &[(Sms, true)]);
    // 2026-03-08: clocks go forward at 02:00. 08:00 EDT is 12:00Z (not 13:00Z).
    let dec = decide(us, &d, &[], &[Sms], "2026-03-08T07:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-08T12:00:00Z"));
    // The day before, 08:00 EST is 13:00Z.
    let dec = decide(us, &d, &[], &[Sms], "2026-03-07T07:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-07T13:00:00Z"));
    // 2026-11-01: clocks go back at 02:00. 08:00 EST is 13:00Z; 20:59 EST is 01:59Z.
    let dec = decide(us, &d, &[], &[Sms], "2026-11-01T05:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-11-01T13:00:00Z"));
    let dec = decide(us, &d, &[], &[Sms], "2026-11-02T01:59:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-11-02T01:59:00Z"));
    let dec = decide(us, &d, &[], &[Sms], "2026-11-02T02:00:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-11-02T13:00:00Z"));

    let cl = preset("CL").unwrap();
    let d = debtor(SANTIAGO, "+56911112222", &[(Whatsapp, true)]);
    // Chile, 2026-04-05 (Sunday) at 00:00 clocks go back from -03 to -04: Thursday 19:59 is
    // 22:59Z; after it Good Friday and Holy Saturday, Sunday, then Monday 08:00 is 12:00Z.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-04-02T22:59:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-04-02T22:59:00Z"));
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-04-02T23:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Mon 2026-04-06 08:00");
    assert_eq!(contact_at(&dec).1, ts("2026-04-06T12:00:00Z"));
    // 2026-09-06 (Sunday) midnight does not exist (00:00 → 01:00, -04 → -03): Saturday after
    // hours goes to Monday 08:00 -03, 11:00Z.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-09-06T00:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-09-07T11:00:00Z"));
    // The gap counts local days across the change: Saturday 4 April → Tuesday 7 April.
    let sat = contact("2026-04-04T14:00:00Z", Whatsapp);
    let dec = decide(cl, &d, &[sat], &[Whatsapp], "2026-04-06T12:00:00Z");
    assert_eq!(local(contact_at(&dec).1, SANTIAGO), "Tue 2026-04-07 08:00");
}

#[test]
fn fail_closed_and_holds() {
    let cl = preset("CL").unwrap();
    let now = "2026-03-16T15:00:00Z";
    let none = debtor(SANTIAGO, "+56911112222", &[]);
    assert_eq!(rule(&decide(cl, &none, &[], &[Whatsapp], now)), "consent");
    // SMS needs no record in Chile; WhatsApp does.
    assert_eq!(
        contact_at(&decide(cl, &none, &[], &[Whatsapp, Sms], now)).0,
        Sms
    );
    // Opt-out everywhere (STOP ALL writes a withdrawal on every channel).
    let opted = debtor(
        SANTIAGO,
        "+56911112222",
        &[(Whatsapp, false), (Sms, false), (Email, false)],
    );
    let dec = decide(cl, &opted, &[], &[Whatsapp, Sms, Email], now);
    assert_eq!(rule(&dec), "opt_out");
    assert_eq!(next_possible(&dec), None);
    // The latest record decides: opted out, then back in.
    let back = debtor_at(
        SANTIAGO,
        "+56911112222",
        &[
            (Sms, true, ts("2026-01-01T00:00:00Z")),
            (Sms, false, ts("2026-02-01T00:00:00Z")),
            (Sms, true, ts("2026-03-01T00:00:00Z")),
        ],
    );
    assert_eq!(contact_at(&decide(cl, &back, &[], &[Sms], now)).0, Sms);
    assert_eq!(rule(&decide(cl, &back, &[], &[], now)), "no_channel");
    // No holiday data for the year, now or where the search would land.
    let d = debtor(SANTIAGO, "+56911112222", &[(Whatsapp, true)]);
    let dec = decide(cl, &d, &[], &[Whatsapp], "2031-03-17T15:00:00Z");
    assert_eq!(rule(&dec), "no_holiday_data");
    assert_eq!(next_possible(&dec), None);
    let dec = decide(cl, &d, &[], &[Whatsapp], "2030-12-31T23:30:00Z");
    assert_eq!(rule(&dec), "no_holiday_data");
    // A zone that cannot be checked against the phone's country: one whose zones cobro does
    // not know (Ecuador), or no country at all. Even a plausible zone is not trusted then.
    for (phone, zone, why) in [
        (
            "+593991234567",
            "America/Guayaquil",
            "is in EC, whose time zones",
        ),
        ("+80012345678", SANTIAGO, "is in no country cobro can place"),
    ] {
        let lost = debtor(zone, phone, &[(Whatsapp, true)]);
        let dec = decide(cl, &lost, &[], &[Whatsapp], now);
        assert_eq!(rule(&dec), "unknown_time_zone");
        assert_eq!(next_possible(&dec), None);
        let Decision::Blocked { verdict, .. } = &dec else {
            unreachable!()
        };
        assert!(verdict.reason.contains(why), "{}", verdict.reason);
    }
    assert!(
        Zone::parse("America/Atlantis").is_err(),
        "refused at the door"
    );
    // jiff accepts CLDR's `Etc/Unknown` (any case) and reads it as UTC: like any zone that is
    // not the phone's country's, it is replaced by every zone of that country.
    for unknown in ["Etc/Unknown", "etc/UNKNOWN"] {
        let mut lost = d.clone();
        lost.time_zone = Zone::parse(unknown).unwrap();
        let dec = decide(cl, &lost, &[], &[Whatsapp], "2026-06-15T12:00:00Z");
        assert_eq!(rule(&dec), "window");
        assert_eq!(
            local(contact_at(&dec).1, "Pacific/Easter"),
            "Mon 2026-06-15 08:00"
        );
    }
    // Not in force yet: blocked until the first local day, which the same rule then allows.
    let mut later = cl.clone();
    later.effective_from = date(2026, 6, 1);
    let dec = decide(&later, &d, &[], &[Whatsapp], now);
    assert_eq!(rule(&dec), "policy_not_in_force");
    let next = next_possible(&dec).unwrap();
    assert_eq!(local(next, SANTIAGO), "Mon 2026-06-01 00:00");
    let again = decide_with(&later, &d, &Holds::default(), &[], &[Whatsapp], next);
    assert_eq!(rule(&again), "window");
    let mut ended = cl.clone();
    ended.effective_to = Some(date(2026, 1, 31));
    let dec = decide(&ended, &d, &[], &[Whatsapp], now);
    assert_eq!(
        (rule(&dec), next_possible(&dec)),
        ("policy_not_in_force".into(), None)
    );
    // Stops and pauses.
    let stops = [
        (
            Holds {
                lawsuit_served: true,
                ..Holds::default()
            },
            "stop:lawsuit_served",
        ),
        (
            Holds {
                insolvency: true,
                ..Holds::default()
            },
            "stop:insolvency",
        ),
        (
            Holds {
                dispute_open: true,
                ..Holds::default()
            },
            "stop:dispute_open",
        ),
        (
            Holds {
                paused: true,
                pause_reason: Some("vulnerability".into()),
                ..Holds::default()
            },
            "pause",
        ),
    ];
    for (holds, expected) in stops {
        let dec = decide_with(cl, &d, &holds, &[], &[Whatsapp], ts(now));
        assert_eq!(rule(&dec), expected);
        assert_eq!(next_possible(&dec), None);
    }
    // Breathing space until an instant: blocked until then, and then no longer paused.
    let until = Holds {
        paused_until: Some(ts("2026-04-01T15:00:00Z")),
        pause_reason: Some("breathing space".into()),
        ..Holds::default()
    };
    let dec = decide_with(cl, &d, &until, &[], &[Whatsapp], ts(now));
    assert_eq!(rule(&dec), "pause");
    assert_eq!(next_possible(&dec), Some(ts("2026-04-01T15:00:00Z")));
    let dec = decide_with(cl, &d, &until, &[], &[Whatsapp], ts("2026-04-01T15:00:00Z"));
    assert_eq!(contact_at(&dec).1, ts("2026-04-01T15:00:00Z"));
}

#[test]
fn composing_takes_the_strictest_of_each_rule() {
    let cl = preset("CL").unwrap();
    let us = preset("US").unwrap();
    let both = cl.compose(us);
    assert_eq!(both.id, "CL+US");
    assert_eq!(both.version, "2026-11-01");
    assert_eq!(
        both.windows.on(jiff::civil::Weekday::Monday),
        &[Range::hours(8, 20)]
    );
    assert!(both.windows.on(jiff::civil::Weekday::Sunday).is_empty());
    assert_eq!(both.holidays, ["CL", "US"]);
    assert_eq!(both.caps.len(), 3, "CL's two caps and US's 7-in-7");
    assert_eq!(both.min_days_between, 3);
    assert!(both.opt_out_footer);
    assert_eq!(both.effective_from, date(2021, 11, 30));
    both.validate().unwrap();
    // Colombia with São Paulo: Saturday 08-14 (SP) within 08-15 (CO); one channel a week and
    // every channel authorised, from Colombia.
    let co_sp = compose_presets(&["CO", "BR-SP"]).unwrap();
    assert_eq!(
        co_sp.windows.on(jiff::civil::Weekday::Saturday),
        &[Range::hours(8, 14)]
    );
    assert_eq!(
        co_sp.windows.on(jiff::civil::Weekday::Monday),
        &[Range::hours(8, 19)]
    );
    assert!(co_sp.one_channel_per_week);
    assert_eq!(co_sp.consent_required, [Whatsapp, Sms, Email]);
    assert_eq!(compose_presets(&["CL", "CL"]).unwrap(), *cl);
    assert!(compose_presets(&["CL", "FR"]).unwrap_err().contains("FR"));
    // Two ranges against one: the intersection keeps both pieces, in order.
    let mut split = cl.clone();
    split.windows = Windows::days(&[jiff::civil::Weekday::Monday], Range::hours(9, 12))
        .and(&[jiff::civil::Weekday::Monday], Range::hours(14, 22));
    let c = cl.compose(&split);
    assert_eq!(
        c.windows.on(jiff::civil::Weekday::Monday),
        &[Range::hours(9, 12), Range::hours(14, 20)]
    );
    c.validate().unwrap();
    // The policy for a debtor: the tenant's country and the debtor's phone.
    let p = policy_for("CL", "+12125551234", None).unwrap();
    assert_eq!(p.id, "CL+US");
    assert_eq!(policy_for("CL", "+56911112222", None).unwrap().id, "CL");
    assert_eq!(jurisdiction_of_phone("+5511999990000"), Some("BR-SP"));
    assert_eq!(jurisdiction_of_phone("+5521999990000"), Some("BR-RJ"));
    assert_eq!(jurisdiction_of_phone("+5561999990000"), Some("BR"));
    assert!(
        policy_for("FR", "+33612345678", None).is_none(),
        "no preset: no policy, no send"
    );
    assert_eq!(
        resolve_policy("FR", "+56911112222", None)
            .unwrap_err()
            .rule(),
        "no_policy"
    );
    // A composed decision obeys both: a US debtor of a Chilean tenant, on a US holiday that is
    // not Chilean (Thanksgiving), waits for Friday.
    let d = debtor(NEW_YORK, "+12125551234", &[(Sms, true)]);
    let dec = decide(&p, &d, &[], &[Sms], "2026-11-26T15:00:00Z");
    assert_eq!(rule(&dec), "holiday");
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Fri 2026-11-27 08:00");
}

#[test]
fn a_debtor_in_a_country_without_a_preset_gets_no_policy() {
    // Ecuador bans weekend collection (LODC art. 49); cobro has no EC preset, so a Chilean
    // tenant's rules must not stand in for it.
    assert!(policy_for("CL", "+593991234567", None).is_none());
    let none = resolve_policy("CL", "+593991234567", None).unwrap_err();
    assert_eq!(none.rule(), "unknown_jurisdiction");
    assert_eq!(
        none.to_string(),
        "[unknown_jurisdiction] the debtor's phone +593991234567 is in EC, which has no \
         compliance preset: nothing is sent (fail closed)"
    );
    // Canada and the Caribbean share +1 with the United States, under other laws.
    assert_eq!(jurisdiction_of_phone("+14165551234"), None);
    assert!(policy_for("US", "+14165551234", None).is_none());
    assert!(policy_for("US", "+18095551234", None).is_none());
    // A number in no country at all (a global freephone code).
    let none = resolve_policy("CL", "+80012345678", None).unwrap_err();
    assert_eq!(none, NoPolicy::UnplacedPhone("+80012345678".into()));
    assert!(none.to_string().contains("in no country cobro can place"));
    // Debtors at home and in covered countries still have theirs; US territories are under
    // US federal law.
    assert_eq!(policy_for("CL", "+56911112222", None).unwrap().id, "CL");
    assert_eq!(
        policy_for("CL", "+5511999990000", None).unwrap().id,
        "CL+BR-SP"
    );
    assert_eq!(policy_for("US", "+17875551234", None).unwrap().id, "US");
    assert_eq!(policy_for("CL", "+12125551234", None).unwrap().id, "CL+US");
}

#[test]
fn a_zone_not_of_the_phones_country_is_read_as_every_zone_of_it() {
    let cl = preset("CL").unwrap();
    // Monday 15 June 2026, 11:00Z: 08:00 in Etc/GMT+3 but 07:00 in Santiago, before Chile's
    // hours. The record's zone is not Chilean, so every Chilean zone must allow the contact:
    // the last to open is Easter Island (UTC-6), at 14:00Z.
    for wrong in ["Etc/GMT+3", "UTC", "Europe/Madrid"] {
        let d = debtor(wrong, "+56911112222", &[(Whatsapp, true)]);
        for now in ["2026-06-15T11:00:00Z", "2026-06-15T12:00:00Z"] {
            let dec = decide(cl, &d, &[], &[Whatsapp], now);
            assert_eq!(rule(&dec), "window", "{wrong} at {now}: {dec:?}");
            assert_eq!(
                local(contact_at(&dec).1, "Pacific/Easter"),
                "Mon 2026-06-15 08:00"
            );
            let Decision::Contact {
                waited_for: Some(v),
                ..
            } = &dec
            else {
                unreachable!()
            };
            assert!(
                v.reason.contains(&format!(
                    "`{wrong}` is not one of CL's, so every zone of CL"
                )),
                "{}",
                v.reason
            );
        }
    }
    // In Santiago itself (or under its old name) the record is trusted: 08:00 there is 12:00Z.
    for zone in [SANTIAGO, "Chile/Continental"] {
        let d = debtor(zone, "+56911112222", &[(Whatsapp, true)]);
        let dec = decide(cl, &d, &[], &[Whatsapp], "2026-06-15T11:00:00Z");
        assert_eq!(contact_at(&dec).1, ts("2026-06-15T12:00:00Z"));
        let dec = decide(cl, &d, &[], &[Whatsapp], "2026-06-15T12:00:00Z");
        assert_eq!(
            contact_at(&dec).1,
            ts("2026-06-15T12:00:00Z"),
            "allowed now"
        );
    }
    // A valid zone of the phone's country is trusted, whichever: Los Angeles, 08:30 there,
    // while Honolulu is at 05:30.
    let us = preset("US").unwrap();
    let la = debtor("America/Los_Angeles", "+12125551234", &[(Sms, true)]);
    let dec = decide(us, &la, &[], &[Sms], "2026-06-15T15:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-06-15T15:30:00Z"));
    let dec = decide(us, &la, &[], &[Sms], "2026-06-15T14:30:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "America/Los_Angeles"),
        "Mon 2026-06-15 08:00"
    );
    assert_eq!(
        dec.rule(),
        Some("window"),
        "judged in Los Angeles, not across the US"
    );
    // A US number with a European zone: every US zone, so 08:00 in Honolulu (18:00Z) at the
    // earliest, and no later than 21:00 in New York.
    let abroad = debtor("Europe/London", "+12125551234", &[(Sms, true)]);
    let dec = decide(us, &abroad, &[], &[Sms], "2026-06-15T15:30:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "Pacific/Honolulu"),
        "Mon 2026-06-15 08:00"
    );
    let dec = decide(us, &abroad, &[], &[Sms], "2026-06-16T01:00:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "Pacific/Honolulu"),
        "Tue 2026-06-16 08:00"
    );
    // Puerto Rico keeps its own clock: its zone is trusted for a +1 787 number.
    let pr = debtor("America/Puerto_Rico", "+17875551234", &[(Sms, true)]);
    let dec = decide(us, &pr, &[], &[Sms], "2026-06-15T11:30:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "America/Puerto_Rico"),
        "Mon 2026-06-15 08:00"
    );
    assert_eq!(
        contact_at(&decide(us, &pr, &[], &[Sms], "2026-12-15T12:30:00Z")).1,
        ts("2026-12-15T12:30:00Z"),
        "08:30 in Puerto Rico"
    );
}

#[test]
fn a_zone_of_another_place_is_read_with_every_zone_of_the_phones_country() {
    let us = preset("US").unwrap();
    // A +1 787 number recorded in New York: the debtor may be in Puerto Rico or in New York, so
    // both clocks must allow the contact. In December Puerto Rico (no DST) is an hour ahead.
    let ny = debtor(NEW_YORK, "+17875551234", &[(Sms, true)]);
    // 08:30 in Puerto Rico, 07:30 in New York: wait for 08:00 in New York.
    let dec = decide(us, &ny, &[], &[Sms], "2026-12-15T12:30:00Z");
    assert_eq!(rule(&dec), "window", "{dec:?}");
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Tue 2026-12-15 08:00");
    let Decision::Contact {
        waited_for: Some(v),
        ..
    } = &dec
    else {
        unreachable!()
    };
    assert!(
        v.reason.contains(
            "`America/New_York` is not one of PR's, so every zone of PR is checked, and \
             `America/New_York` too"
        ),
        "{}",
        v.reason
    );
    // 20:30 in New York, but 21:30 in Puerto Rico: after hours there; the next morning is
    // 08:00 in New York (09:00 in Puerto Rico).
    let dec = decide(us, &ny, &[], &[Sms], "2026-12-15T01:30:00Z");
    assert_eq!(local(contact_at(&dec).1, NEW_YORK), "Tue 2026-12-15 08:00");
    // Both open: now.
    let at = "2026-12-15T14:00:00Z";
    assert_eq!(contact_at(&decide(us, &ny, &[], &[Sms], at)).1, ts(at));

    // A Spanish number recorded in Mexico City: Spain's hours (Mon-Fri 09:00-21:00) must hold
    // in Madrid, Ceuta, the Canaries and Mexico City. In June, 15:00Z-19:00Z is all they share.
    let es = preset("ES").unwrap();
    let mx = debtor("America/Mexico_City", "+34612345678", &[(Sms, true)]);
    // 12:00 in Madrid, 11:00 in the Canaries, 04:00 in Mexico City.
    let dec = decide(es, &mx, &[], &[Sms], "2026-06-15T10:00:00Z");
    assert_eq!(rule(&dec), "window", "{dec:?}");
    let at = contact_at(&dec).1;
    assert_eq!(local(at, "America/Mexico_City"), "Mon 2026-06-15 09:00");
    assert_eq!(local(at, "Europe/Madrid"), "Mon 2026-06-15 17:00");
    // 14:00 in Mexico City, 22:00 in Madrid, 21:00 in the Canaries: the next day.
    let dec = decide(es, &mx, &[], &[Sms], "2026-06-15T20:00:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "America/Mexico_City"),
        "Tue 2026-06-16 09:00"
    );
    // 20:30 in Madrid, 19:30 in the Canaries, 12:30 in Mexico City: now.
    let at = "2026-06-15T18:30:00Z";
    assert_eq!(contact_at(&decide(es, &mx, &[], &[Sms], at)).1, ts(at));

    // A zone that names no place is still replaced by the country's zones alone: at 12:30Z
    // Puerto Rico is at 08:30, and UTC's 12:30 or Etc/GMT+5's 07:30 do not count.
    for nowhere in ["UTC", "Etc/GMT+5", "Etc/Unknown"] {
        let d = debtor(nowhere, "+17875551234", &[(Sms, true)]);
        let at = "2026-12-15T12:30:00Z";
        assert_eq!(
            contact_at(&decide(us, &d, &[], &[Sms], at)).1,
            ts(at),
            "{nowhere}"
        );
        let dec = decide(us, &d, &[], &[Sms], "2026-12-15T11:30:00Z");
        let Decision::Contact {
            waited_for: Some(v),
            at,
            ..
        } = &dec
        else {
            panic!("{dec:?}")
        };
        assert_eq!(local(*at, "America/Puerto_Rico"), "Tue 2026-12-15 08:00");
        assert!(
            v.reason.ends_with("every zone of PR is checked)"),
            "{}",
            v.reason
        );
    }

    // Zones that share no hours: nothing is ever allowed, and the block says which were read.
    // Mondays 09:00-12:00: Madrid and the Canaries share 08:00Z-10:00Z, Auckland's is Sunday.
    let mut short = es.clone();
    short.windows = Windows::days(&[jiff::civil::Weekday::Monday], Range::hours(9, 12));
    let utc = debtor("UTC", "+34612345678", &[(Sms, true)]);
    let dec = decide(&short, &utc, &[], &[Sms], "2026-06-15T10:00:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "Atlantic/Canary"),
        "Mon 2026-06-22 09:00"
    );
    let far = debtor("Pacific/Auckland", "+34612345678", &[(Sms, true)]);
    let dec = decide(&short, &far, &[], &[Sms], "2026-06-15T10:00:00Z");
    assert_eq!(rule(&dec), "no_slot");
    let Decision::Blocked { verdict, .. } = &dec else {
        unreachable!()
    };
    assert!(
        verdict.reason.contains("and `Pacific/Auckland` too"),
        "{}",
        verdict.reason
    );
}

#[test]
fn a_tenant_may_only_tighten() {
    use jiff::civil::Weekday::*;
    let cl = preset("CL").unwrap();
    let mut tighter = cl.clone();
    tighter.windows =
        Windows::days(&[Monday], Range::hours(9, 12)).and(&[Monday], Range::hours(14, 18));
    tighter.min_days_between = 4;
    tighter.caps[0].max = 1;
    tighter.caps[1].days = 14;
    tighter.holidays.push("US".into());
    tighter.consent_required.push(Sms);
    tighter.opt_out_footer = true;
    tighter.check_tightens(cl).unwrap();
    // A single cap over every channel covers a per-group one.
    let mut one_cap = cl.clone();
    one_cap.caps = vec![Cap {
        group: None,
        channels: vec![],
        max: 2,
        days: 7,
    }];
    one_cap.check_tightens(cl).unwrap();

    type Loosen = Box<dyn Fn(&mut Policy)>;
    let cases: Vec<(Loosen, &str)> = vec![
        (
            Box::new(|p| p.windows = Windows::days(&[Sunday], Range::hours(9, 18))),
            "windows.sunday[0]",
        ),
        (
            Box::new(|p| p.windows = Windows::days(&[Monday], Range::hours(7, 12))),
            "windows.monday[0]",
        ),
        (Box::new(|p| p.caps[0].max = 5), "caps[0].max"),
        (Box::new(|p| p.caps[1].days = 3), "caps[1].days"),
        (Box::new(|p| p.caps.truncate(1)), "caps"),
        (Box::new(|p| p.caps[0].channels = vec![Whatsapp]), "caps"),
        (Box::new(|p| p.holidays.clear()), "holidays"),
        (Box::new(|p| p.min_days_between = 2), "min_days_between"),
        (Box::new(|p| p.max_per_day = None), "max_per_day"),
        (Box::new(|p| p.max_per_day = Some(2)), "max_per_day"),
        (Box::new(|p| p.consent_required.clear()), "consent_required"),
        (
            Box::new(|p| p.stop_on.pop().map(drop).unwrap_or(())),
            "stop_on",
        ),
    ];
    for (loosen, field) in cases {
        let mut p = cl.clone();
        loosen(&mut p);
        assert_eq!(p.check_tightens(cl).unwrap_err().field, field);
    }
    let co = preset("CO").unwrap();
    let mut p = co.clone();
    p.one_channel_per_week = false;
    assert_eq!(
        p.check_tightens(co).unwrap_err().field,
        "one_channel_per_week"
    );
    let us = preset("US").unwrap();
    let mut p = us.clone();
    p.opt_out_footer = false;
    assert_eq!(p.check_tightens(us).unwrap_err().field, "opt_out_footer");
}

#[test]
fn policies_load_from_json_and_errors_name_the_field() {
    let cl = preset("CL").unwrap();
    let json = serde_json::to_string_pretty(cl).unwrap();
    assert!(
        json.contains("\"monday\": [\n      \"08:00-20:00\""),
        "{json}"
    );
    assert!(!json.contains("sunday"), "a closed day is left out");
    assert_eq!(Policy::from_json(&json).unwrap(), *cl);
    // The older stored form (seven arrays of minutes) still reads.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["windows"] = serde_json::json!([
        [{"start": 480, "end": 1200}], [], [], [], [], [], []
    ]);
    let old = Policy::from_json(&v.to_string()).unwrap();
    assert_eq!(
        old.windows.on(jiff::civil::Weekday::Monday),
        &[Range::hours(8, 20)]
    );

    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        edit(&mut v);
        Policy::from_json(&v.to_string()).unwrap_err()
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["windows"]["saturday"] = serde_json::json!(["20:00-08:00"])),
            "windows.saturday[0]",
        ),
        (
            Box::new(|v| {
                v["windows"]["monday"] = serde_json::json!(["08:00-12:00", "11:00-14:00"])
            }),
            "windows.monday[1]",
        ),
        (
            Box::new(|v| v["caps"][1]["days"] = 0.into()),
            "caps[1].days",
        ),
        (Box::new(|v| v["caps"][0]["max"] = 0.into()), "caps[0].max"),
        (
            Box::new(|v| v["caps"][0]["group"] = "Written!".into()),
            "caps[0].group",
        ),
        (
            Box::new(|v| v["caps"][0]["channels"] = serde_json::json!(["sms", "sms"])),
            "caps[0].channels[1]",
        ),
        (
            Box::new(|v| v["holidays"] = serde_json::json!(["CL", "XX"])),
            "holidays[1]",
        ),
        (
            Box::new(|v| v["holidays"] = serde_json::json!(["CL", "CL"])),
            "holidays[1]",
        ),
        (
            Box::new(|v| v["sources"] = serde_json::json!([])),
            "sources",
        ),
        (Box::new(|v| v["version"] = "".into()), "version"),
        (
            Box::new(|v| v["effective_to"] = "2020-01-01".into()),
            "effective_to",
        ),
        (Box::new(|v| v["max_per_day"] = 0.into()), "max_per_day"),
        (
            Box::new(|v| v["min_days_between"] = 40.into()),
            "min_days_between",
        ),
        (
            Box::new(|v| v["consent_required"] = serde_json::json!(["whatsapp", "whatsapp"])),
            "consent_required[1]",
        ),
    ];
    for (edit, field) in cases {
        assert_eq!(broken(&*edit).field, field);
    }
    // Shape errors come from the parser, with the offending value.
    let e = broken(&|v| v["windows"]["funday"] = serde_json::json!([]));
    assert!(e.message.contains("funday"), "{e}");
    let e = broken(&|v| v["windows"]["monday"] = serde_json::json!(["8-20"]));
    assert!(e.message.contains("8-20"), "{e}");
    let e = broken(&|v| v["windows"]["monday"] = serde_json::json!(["08:00-25:00"]));
    assert!(e.message.contains("25:00"), "{e}");
    let e = broken(&|v| v["speed"] = 1.into());
    assert!(e.message.contains("speed"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Property tests.

/// An independent reading of the rules for one contact on `channel` at `at`: the first rule
/// it breaks, or `None`. Written from the rules' definitions, not from the engine's search.
fn breaks(
    policy: &Policy,
    d: &Debtor,
    holds: &Holds,
    history: &[PastContact],
    channel: ChannelKind,
    at: Timestamp,
    now: Timestamp,
) -> Option<String> {
    for t in &policy.stop_on {
        if holds.has(*t) {
            return Some(t.rule().into());
        }
    }
    if holds.paused_until.is_some_and(|u| at < u) || (holds.paused && holds.paused_until.is_none())
    {
        return Some("pause".into());
    }
    match latest_consent(d, channel) {
        Some(false) => return Some("opt_out".into()),
        None if policy.consent_required.contains(&channel) => return Some("consent".into()),
        _ => {}
    }
    let tz = d.time_zone.tz();
    let l = at.to_zoned(tz.clone());
    if !policy.in_force(now.to_zoned(tz.clone()).date()) {
        return Some("policy_not_in_force".into());
    }
    for cal in &policy.holidays {
        if holidays::is_holiday(cal, l.date()).unwrap() {
            return Some("holiday".into());
        }
    }
    let minute = l.hour() as u16 * 60 + l.minute() as u16;
    if !policy
        .windows
        .on(l.weekday())
        .iter()
        .any(|r| r.start <= minute && minute < r.end)
    {
        return Some("window".into());
    }
    let day_of = |t: Timestamp| t.to_zoned(tz.clone()).date();
    if let Some(max) = policy.max_per_day {
        if history.iter().filter(|h| day_of(h.at) == l.date()).count() as u32 >= max {
            return Some("max_per_day".into());
        }
    }
    for h in history {
        let apart = (l.date() - day_of(h.at)).get_days().abs();
        if apart < policy.min_days_between as i32 {
            return Some("gap".into());
        }
        if policy.one_channel_per_week
            && h.channel != channel
            && h.at.duration_since(at).abs() < SignedDuration::from_hours(24 * 7)
        {
            return Some("one_channel_per_week".into());
        }
    }
    for cap in policy.caps.iter().filter(|c| c.counts(channel)) {
        let span = SignedDuration::from_hours(24 * cap.days as i64);
        // Every window (end - span, end] that holds `at`: those ending at `at` or at a later
        // counted contact less than a span away.
        let ends = std::iter::once(at).chain(
            history
                .iter()
                .filter(|h| cap.counts(h.channel) && h.at > at && h.at < at + span)
                .map(|h| h.at),
        );
        for end in ends {
            let n = history
                .iter()
                .filter(|h| cap.counts(h.channel) && h.at > end - span && h.at <= end)
                .count() as u32;
            if n + 1 > cap.max {
                return Some(cap.id());
            }
        }
    }
    None
}

const ZONES: [(&str, &str); 10] = [
    (SANTIAGO, "+56911112222"),
    ("America/Bogota", "+573001112222"),
    ("America/Lima", "+51911112222"),
    ("America/Mexico_City", "+525512345678"),
    ("Europe/Madrid", "+34612345678"),
    ("America/Sao_Paulo", "+5511999990000"),
    ("America/Sao_Paulo", "+5521999990000"),
    ("America/Argentina/Buenos_Aires", "+5491112345678"),
    (NEW_YORK, "+12125551234"),
    ("Europe/London", "+447700900123"),
];

fn channel() -> impl Strategy<Value = ChannelKind> {
    prop_oneof![Just(Whatsapp), Just(Sms), Just(Email)]
}

/// A preset, or two composed, sometimes tightened further by a tenant.
fn policy() -> impl Strategy<Value = Policy> {
    let n = presets().len();
    (0..n, proptest::option::of(0..n), any::<bool>(), 0u32..3).prop_map(
        |(a, b, tighten, extra_gap)| {
            let mut p = presets()[a].clone();
            if let Some(b) = b {
                p = p.compose(&presets()[b]);
            }
            if tighten {
                let mut own = p.clone();
                own.min_days_between += extra_gap;
                own.caps.push(Cap {
                    group: Some("tenant".into()),
                    channels: vec![Sms, Email],
                    max: 2,
                    days: 5,
                });
                own.one_channel_per_week = extra_gap == 2 || own.one_channel_per_week;
                p = p.compose(&own);
            }
            p
        },
    )
}

/// Instants 2024-01-01 .. 2030-12-20, biased to the days around DST changes in the zones.
fn clock() -> impl Strategy<Value = Timestamp> {
    let dst_days = [
        "2026-03-08T00:00:00Z", // New York forward
        "2026-11-01T00:00:00Z", // New York back
        "2026-04-04T12:00:00Z", // Santiago back
        "2026-09-05T12:00:00Z", // Santiago forward
        "2026-03-29T00:00:00Z", // Europe forward
        "2026-10-25T00:00:00Z", // Europe back
    ];
    prop_oneof![
        // Up to November 2030: a decision may look weeks ahead, and the holiday data ends with 2030.
        (1_704_067_200i64..1_919_808_000i64).prop_map(|s| Timestamp::from_second(s).unwrap()),
        (0usize..dst_days.len(), -172_800i64..172_800i64)
            .prop_map(move |(i, off)| ts(dst_days[i]) + SignedDuration::from_secs(off)),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    policy: Policy,
    debtor: Debtor,
    holds: Holds,
    history: Vec<PastContact>,
    channels: Vec<ChannelKind>,
    now: Timestamp,
}

fn case() -> impl Strategy<Value = Case> {
    (
        policy(),
        0usize..ZONES.len(),
        clock(),
        // Mostly grants; a withdrawal now and then.
        proptest::collection::vec(
            (
                channel(),
                proptest::bool::weighted(0.8),
                0i64..(60 * 86_400),
            ),
            0..6,
        ),
        // Mostly in the past week (where caps and gaps bite); some in flight, up to a day ahead.
        proptest::collection::vec(
            prop_oneof![-86_400i64..(8 * 86_400), 0i64..(30 * 86_400)]
                .prop_flat_map(|ago| (Just(ago), channel())),
            0..12,
        ),
        proptest::collection::vec(channel(), 1..4),
        (
            any::<bool>(),
            proptest::option::of(-86_400i64..(30 * 86_400)),
            0u8..40,
        ),
    )
        .prop_map(
            |(policy, zone_i, now, consents, history, channels, (paused, until, stop))| {
                let (zone, phone) = ZONES[zone_i];
                let consents: Vec<(ChannelKind, bool, Timestamp)> = consents
                    .into_iter()
                    .map(|(c, g, ago)| (c, g, now - SignedDuration::from_secs(ago)))
                    .collect();
                let debtor = debtor_at(zone, phone, &consents);
                let history = history
                    .into_iter()
                    .map(|(ago, channel)| PastContact {
                        at: now - SignedDuration::from_secs(ago),
                        channel,
                    })
                    .collect();
                let holds = Holds {
                    // Rare, so most cases reach the time rules.
                    lawsuit_served: stop == 1,
                    dispute_open: stop == 2,
                    insolvency: stop == 3,
                    paused: paused && stop == 4,
                    paused_until: until
                        .filter(|_| (5..8).contains(&stop))
                        .map(|s| now + SignedDuration::from_secs(s)),
                    pause_reason: None,
                };
                Case {
                    policy,
                    debtor,
                    holds,
                    history,
                    channels,
                    now,
                }
            },
        )
}

impl Case {
    fn decide_at(&self, now: Timestamp) -> Decision {
        decide_with(
            &self.policy,
            &self.debtor,
            &self.holds,
            &self.history,
            &self.channels,
            now,
        )
    }

    fn breaks(&self, c: ChannelKind, at: Timestamp) -> Option<String> {
        breaks(
            &self.policy,
            &self.debtor,
            &self.holds,
            &self.history,
            c,
            at,
            self.now,
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the presets, zone, clock, consents, holds and history: a contact the engine
    /// allows is inside the window, not on a holiday, under every cap and the daily limit,
    /// past the gap, on a candidate channel with consent and no opt-out, never during a stop
    /// or a pause; and no earlier instant would have been allowed on any candidate channel.
    #[test]
    fn no_allowed_contact_breaks_a_rule_and_none_earlier_was_allowed(
        c in case(),
        probes in proptest::collection::vec(0.0f64..1.0, 6),
    ) {
        let dec = c.decide_at(c.now);
        if let Decision::Contact { channel, at, waited_for, .. } = &dec {
            prop_assert!(*at >= c.now);
            prop_assert!(c.channels.contains(channel));
            prop_assert_eq!(c.breaks(*channel, *at), None, "{:?}", dec);
            prop_assert_eq!(waited_for.is_some(), *at > c.now);
            // Earliest: instants before `at` break a rule on every candidate channel.
            let span = at.duration_since(c.now);
            let mut instants: Vec<Timestamp> = probes
                .iter()
                .map(|f| c.now + SignedDuration::from_secs((span.as_secs() as f64 * f) as i64))
                .collect();
            instants.push(*at - SignedDuration::from_secs(60));
            for u in instants.into_iter().filter(|u| *u >= c.now && *u < *at) {
                for ch in &c.channels {
                    prop_assert!(c.breaks(*ch, u).is_some(), "{ch:?} was allowed at {u}, before {at}");
                }
            }
            // Asked again at that instant (the sender's re-check), the same answer.
            let again = c.decide_at(*at);
            let (ch2, at2) = contact_at(&again);
            prop_assert_eq!((ch2, at2), (*channel, *at));
        }
    }

    /// Dense histories, every consent given, no holds: the counting rules (caps, gap, daily
    /// limit, one channel a week) carry the decision, and it stays right and earliest.
    #[test]
    fn dense_histories_keep_caps_and_gaps(
        p in policy(), zone_i in 0usize..ZONES.len(), now in clock(),
        history in proptest::collection::vec((-43_200i64..(7 * 86_400), channel()), 2..14),
        probes in proptest::collection::vec(0.0f64..1.0, 8),
    ) {
        let (zone, phone) = ZONES[zone_i];
        let c = Case {
            policy: p,
            debtor: debtor(zone, phone, &[(Whatsapp, true), (Sms, true), (Email, true)]),
            holds: Holds::default(),
            history: history
                .into_iter()
                .map(|(ago, channel)| PastContact { at: now - SignedDuration::from_secs(ago), channel })
                .collect(),
            channels: vec![Sms, Whatsapp, Email],
            now,
        };
        let dec = c.decide_at(now);
        let (channel, at) = contact_at(&dec);
        prop_assert_eq!(c.breaks(channel, at), None, "{:?}", dec);
        let span = at.duration_since(now).as_secs() as f64;
        for f in probes {
            let u = now + SignedDuration::from_secs((span * f) as i64);
            if u < at {
                for ch in &c.channels {
                    prop_assert!(c.breaks(*ch, u).is_some(), "{ch:?} was allowed at {u}, before {at}");
                }
            }
        }
        prop_assert_eq!(contact_at(&c.decide_at(at)), (channel, at));
    }

    /// A block is right about its rule, and `next_possible`, when given, is not blocked by the
    /// same rule.
    #[test]
    fn blocks_are_explained_and_next_possible_clears_the_rule(c in case()) {
        let dec = c.decide_at(c.now);
        if let Decision::Blocked { verdict, next_possible, .. } = &dec {
            prop_assert!(!verdict.reason.is_empty());
            match verdict.rule.as_str() {
                r if r.starts_with("stop:") => prop_assert!(c.holds.has(
                    StopTrigger::ALL.into_iter().find(|t| t.rule() == r).unwrap()
                )),
                "pause" => prop_assert!(c.holds.pause_at(c.now).is_some()),
                "opt_out" | "consent" | "no_channel" => {
                    for ch in &c.channels {
                        let b = c.breaks(*ch, c.now);
                        prop_assert!(matches!(b.as_deref(), Some("opt_out" | "consent")), "{ch:?}: {b:?}");
                    }
                }
                "no_holiday_data" => {}
                other => prop_assert!(false, "unexpected block {other}: {dec:?}"),
            }
            if let Some(next) = next_possible {
                prop_assert!(*next > c.now);
                let again = c.decide_at(*next);
                prop_assert_ne!(again.rule(), Some(verdict.rule.as_str()), "{:?}", again);
            }
        }
    }

    /// A contact allowed under a composition is allowed under each preset it composes.
    #[test]
    fn a_composed_contact_satisfies_each_part(
        a in 0usize..11, b in 0usize..11, zone_i in 0usize..ZONES.len(), now in clock(),
        history in proptest::collection::vec((0i64..(14 * 86_400), channel()), 0..8),
    ) {
        let (pa, pb) = (&presets()[a], &presets()[b]);
        let both = pa.compose(pb);
        let (zone, phone) = ZONES[zone_i];
        let d = debtor(zone, phone, &[(Whatsapp, true), (Sms, true), (Email, true)]);
        let history: Vec<PastContact> = history
            .into_iter()
            .map(|(ago, channel)| PastContact { at: now - SignedDuration::from_secs(ago), channel })
            .collect();
        let dec = decide_with(&both, &d, &Holds::default(), &history, &[Sms, Email], now);
        if let Decision::Contact { channel, at, .. } = dec {
            for p in [pa, pb] {
                prop_assert_eq!(breaks(p, &d, &Holds::default(), &history, channel, at, now), None);
            }
        }
    }

    /// Keywords survive any case, accents and surrounding punctuation.
    #[test]
    fn keywords_ignore_case_and_punctuation(
        i in 0usize..6, upper in any::<bool>(), before in "[ .!¡¿]{0,3}", after in "[ .!?]{0,3}",
    ) {
        let words = ["stop", "baja", "parar", "sair", "unsubscribe", "não quero mais"];
        let w = if upper { words[i].to_uppercase() } else { words[i].to_string() };
        prop_assert_eq!(classify_keyword(&format!("{before}{w}{after}")), Some(OptKeyword::OptOut));
    }
}

/// Zones on record that are none of `ZONES`' countries': no debtor's record is trusted; the
/// places among them are read with the country's zones, the others are not.
const WRONG_ZONES: [&str; 4] = ["UTC", "Etc/GMT+3", "Asia/Tokyo", "Pacific/Auckland"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// A zone on record that is not one of the phone's country's: a contact the engine allows
    /// breaks no rule in any zone of that country (nor in the recorded zone, when it is a
    /// place), none earlier was allowed in all of them, and asked again at that instant the
    /// engine agrees.
    #[test]
    fn an_untrusted_zone_allows_only_what_every_zone_of_the_country_allows(
        c in case(),
        wrong in 0usize..WRONG_ZONES.len(),
        probes in proptest::collection::vec(0.0f64..1.0, 4),
    ) {
        let mut c = c;
        c.debtor.time_zone = Zone::parse(WRONG_ZONES[wrong]).unwrap();
        let country = country_of_phone(c.debtor.phone.as_str()).unwrap();
        // The recorded zone too, when it is a place (the debtor may be there).
        let place = (!WRONG_ZONES[wrong].contains("UTC") && !WRONG_ZONES[wrong].starts_with("Etc/"))
            .then_some(WRONG_ZONES[wrong]);
        let everywhere: Vec<Case> = country_zones::zones_of_country(country)
            .unwrap()
            .zones
            .iter()
            .chain(place.iter())
            .map(|z| {
                let mut x = c.clone();
                x.debtor.time_zone = Zone::parse(z).unwrap();
                x
            })
            .collect();
        let breaks = |ch: ChannelKind, at: Timestamp| everywhere.iter().find_map(|x| x.breaks(ch, at));
        let dec = c.decide_at(c.now);
        if let Decision::Contact { channel, at, .. } = &dec {
            prop_assert_eq!(breaks(*channel, *at), None, "{:?}", dec);
            let span = at.duration_since(c.now).as_secs() as f64;
            let mut instants: Vec<Timestamp> = probes
                .iter()
                .map(|f| c.now + SignedDuration::from_secs((span * f) as i64))
                .collect();
            instants.push(*at - SignedDuration::from_secs(60));
            for u in instants.into_iter().filter(|u| *u >= c.now && *u < *at) {
                for ch in &c.channels {
                    prop_assert!(breaks(*ch, u).is_some(), "{ch:?} was allowed at {u}, before {at}");
                }
            }
            prop_assert_eq!(contact_at(&c.decide_at(*at)), (*channel, *at));
        }
    }
}

/// Throughput, not a timed test: `cargo test --release -p cobro-shared --lib
/// compliance::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let d = debtor(SANTIAGO, "+56911112222", &[(Whatsapp, true), (Sms, true)]);
    let p = policy_for("CL", "+56911112222", None).unwrap();
    let history: Vec<PastContact> = (1..=6)
        .map(|i| PastContact {
            at: ts("2026-03-16T15:00:00Z") - SignedDuration::from_hours(24 * 5 * i),
            channel: if i % 2 == 0 { Sms } else { Whatsapp },
        })
        .collect();
    let n = 100_000;
    let start = std::time::Instant::now();
    let mut contacts = 0;
    for i in 0..n {
        let now = ts("2026-03-16T10:00:00Z") + SignedDuration::from_secs(i * 97);
        let dec = decide_with(&p, &d, &Holds::default(), &history, &[Whatsapp, Sms], now);
        contacts += matches!(dec, Decision::Contact { .. }) as u32;
    }
    let took = start.elapsed();
    eprintln!(
        "{n} decisions in {took:?}: {:.0} per second ({contacts} contacts)",
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(contacts, n as u32);
}

#[cfg(feature = "embedded")]
#[tokio::test]
async fn a_tenant_is_stored_only_with_rules_that_tighten() {
    use crate::adapters::sqlite::SqliteStore;
    use crate::domain::{Tenant, TenantKind};
    use crate::repo::{RepoError, Store};
    let store = Store::new(std::sync::Arc::new(
        SqliteStore::open_in_memory().unwrap().table(),
    ));
    let mut tenant = Tenant {
        id: TenantId::parse("t").unwrap(),
        name: "Acme".into(),
        country: "CL".into(),
        kind: TenantKind::Creditor,
        channels: vec![Whatsapp],
        whatsapp_enabled: false,
        sender_ids: Default::default(),
        policy: Some(preset("CL").unwrap().clone()),
        strategies: None,
        plan_rules: Default::default(),
        pay_page: None,
        chat: Default::default(),
    };
    store.put_tenant(&tenant).await.unwrap();
    let mut looser = preset("CL").unwrap().clone();
    looser.min_days_between = 1;
    tenant.policy = Some(looser);
    let Err(RepoError::Invalid(msg)) = store.put_tenant(&tenant).await else {
        panic!("a looser policy is refused")
    };
    assert!(msg.starts_with("policy.min_days_between"), "{msg}");
    tenant.policy = None;
    tenant.strategies = Some(crate::collect::StrategyBook {
        buckets: vec![],
        strategies: vec![crate::collect::Strategy::on_days("s", &[0])],
        segments: vec![],
        default: "missing".into(),
    });
    let Err(RepoError::Invalid(msg)) = store.put_tenant(&tenant).await else {
        panic!("an invalid book is refused")
    };
    assert!(msg.starts_with("strategies.default"), "{msg}");
}

/// A pause never shortens another: an open-ended one stays open, a later end wins, an expired
/// one is replaced; the debtor's holds join the account's.
#[test]
fn pauses_only_lengthen_and_the_debtors_holds_join_the_accounts() {
    let now = ts("2026-03-16T15:00:00Z");
    let day = |n: i64| now + SignedDuration::from_hours(24 * n);
    let mut open = Holds::default();
    open.pause(None, "vulnerability".into(), now);
    open.pause(Some(day(30)), "asked for a month".into(), now);
    assert_eq!(open.pause_at(day(31)), Some(None));
    assert_eq!(open.pause_reason.as_deref(), Some("vulnerability"));

    let mut timed = Holds::default();
    timed.pause(Some(day(60)), "breathing space".into(), now);
    timed.pause(Some(day(30)), "asked for a month".into(), now);
    assert_eq!(timed.pause_at(day(31)), Some(Some(day(60))));
    assert_eq!(timed.pause_reason.as_deref(), Some("breathing space"));
    timed.pause(None, "vulnerability".into(), now);
    assert_eq!(timed.pause_at(day(61)), Some(None));

    let mut expired = Holds::default();
    expired.pause(Some(day(5)), "old".into(), now);
    expired.pause(Some(day(20)), "new".into(), day(10));
    assert_eq!(expired.pause_at(day(15)), Some(Some(day(20))));
    expired.lift_pause();
    assert_eq!(expired.pause_at(day(15)), None);

    let account = Holds {
        dispute_open: true,
        ..Holds::default()
    };
    let mut person = Holds {
        insolvency: true,
        ..Holds::default()
    };
    person.pause(Some(day(7)), "asked".into(), now);
    let both = account.with(&person, now);
    assert!(both.insolvency && both.dispute_open);
    assert_eq!(both.pause_at(now), Some(Some(day(7))));
    assert_eq!(account.with(&person, day(8)).pause_at(day(8)), None);
}
