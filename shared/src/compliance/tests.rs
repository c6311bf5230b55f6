//! Table tests for each preset's edge cases, composition and tighten-only, and property tests
//! over random debtors, zones, clocks and histories: no contact the engine allows ever breaks
//! a rule.

use jiff::{tz::TimeZone, SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::domain::{ChannelKind, Consent, Debtor, DebtorId, Language, Phone, TenantId, Zone};

use ChannelKind::*;

fn debtor(zone: &str, phone: &str, consents: &[(ChannelKind, bool)]) -> Debtor {
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
            .map(|(c, g)| Consent {
                channel: *c,
                granted: *g,
                at: "2026-01-01T00:00:00Z".parse().unwrap(),
                source: "crm".into(),
            })
            .collect(),
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

fn decide(
    policy: &Policy,
    d: &Debtor,
    history: &[PastContact],
    channels: &[ChannelKind],
    now: &str,
) -> Decision {
    evaluate(
        policy,
        &Facts {
            debtor: d,
            holds: &Holds::default(),
            history,
            channels,
            now: ts(now),
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
    match dec {
        Decision::Blocked { verdict, .. } => verdict.rule.clone(),
        Decision::Contact { waited_for, .. } => waited_for
            .as_ref()
            .map(|v| v.rule.clone())
            .unwrap_or_default(),
    }
}

#[test]
fn every_preset_is_valid_and_has_sources() {
    assert_eq!(presets().len(), 11);
    for p in presets() {
        p.validate().unwrap();
        assert!(!p.sources.is_empty(), "{}", p.id);
        assert!(
            p.consent_required.contains(&Whatsapp),
            "{}: WhatsApp needs an opt-in",
            p.id
        );
    }
}

#[test]
fn chile_two_written_messages_a_week_two_days_apart_mon_sat_08_20() {
    let cl = preset("CL").unwrap();
    let d = debtor(
        "America/Santiago",
        "+56911112222",
        &[(Whatsapp, true), (Sms, true)],
    );
    let z = "America/Santiago";
    // Sunday: wait for Monday 08:00 local.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-15T15:00:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Mon 2026-03-16 08:00");
    assert_eq!(rule(&dec), "window");
    // Monday 21:00 local: after hours, Tuesday 08:00.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-03-17T00:00:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Tue 2026-03-17 08:00");
    // A contact on Monday: the next no sooner than Thursday (two days apart).
    let monday = PastContact {
        at: ts("2026-03-16T13:00:00Z"),
        channel: Whatsapp,
    };
    let dec = decide(cl, &d, &[monday], &[Whatsapp, Sms], "2026-03-17T13:00:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Thu 2026-03-19 08:00");
    assert_eq!(rule(&dec), "gap");
    // Monday and Thursday: the third written one waits for the rolling week to free a slot.
    let thursday = PastContact {
        at: ts("2026-03-19T13:00:00Z"),
        channel: Sms,
    };
    let dec = decide(
        cl,
        &d,
        &[monday, thursday],
        &[Whatsapp],
        "2026-03-21T13:00:00Z",
    );
    let (_, at) = contact_at(&dec);
    assert!(at >= ts("2026-03-23T13:00:00Z"), "{}", local(at, z));
    // Holidays: 2026-05-01 (Friday) is Labour Day in Chile.
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-05-01T14:00:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Sat 2026-05-02 08:00");
    assert_eq!(rule(&dec), "holiday");
}

#[test]
fn colombia_saturday_until_15_and_one_channel_a_week() {
    let co = preset("CO").unwrap();
    let z = "America/Bogota";
    let d = debtor(z, "+573001112222", &[(Whatsapp, true), (Sms, true)]);
    // Saturday 14:30 is allowed; 15:30 is not: Sunday never, and Monday 2026-03-23 is Saint
    // Joseph's Day (observed), so Tuesday 07:00.
    let dec = decide(co, &d, &[], &[Whatsapp], "2026-03-21T19:30:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Sat 2026-03-21 14:30");
    let dec = decide(co, &d, &[], &[Whatsapp], "2026-03-21T20:30:00Z");
    assert_eq!(local(contact_at(&dec).1, z), "Tue 2026-03-24 07:00");
    // WhatsApp used on Monday: SMS is not, the rest of the week.
    let used = PastContact {
        at: ts("2026-03-16T15:00:00Z"),
        channel: Whatsapp,
    };
    let dec = decide(co, &d, &[used], &[Sms], "2026-03-18T15:00:00Z");
    assert_eq!(rule(&dec), "one_channel_per_week");
    let dec = decide(co, &d, &[used], &[Sms, Whatsapp], "2026-03-18T15:00:00Z");
    assert_eq!(contact_at(&dec).0, Whatsapp);
    // Only authorised channels: no e-mail consent, no e-mail.
    let dec = decide(co, &d, &[], &[Email], "2026-03-18T15:00:00Z");
    assert_eq!(rule(&dec), "consent");
}

#[test]
fn peru_never_on_weekends_and_the_us_caps_seven_in_seven() {
    let pe = preset("PE").unwrap();
    let d = debtor("America/Lima", "+51911112222", &[(Whatsapp, true)]);
    let dec = decide(pe, &d, &[], &[Whatsapp], "2026-03-21T15:00:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "America/Lima"),
        "Mon 2026-03-23 07:00"
    );

    let us = preset("US").unwrap();
    assert!(us.opt_out_footer);
    let d = debtor("America/New_York", "+12125551234", &[(Sms, true)]);
    let seven: Vec<PastContact> = (0..7)
        .map(|i| PastContact {
            at: ts("2026-03-10T14:00:00Z")
                .checked_add(SignedDuration::from_hours(24 * i))
                .unwrap(),
            channel: Sms,
        })
        .collect();
    // 7 in the last 7 days (one a day): the 8th waits until the oldest leaves the window.
    let dec = decide(us, &d, &seven, &[Sms], "2026-03-16T20:00:00Z");
    let (_, at) = contact_at(&dec);
    assert!(at >= ts("2026-03-17T14:00:00Z"), "{at}");
    assert!(
        rule(&dec).starts_with("cap:") || rule(&dec) == "max_per_day",
        "{}",
        rule(&dec)
    );
}

#[test]
fn dst_changes_keep_the_local_window() {
    let us = preset("US").unwrap();
    let z = "America/New_York";
    let d = debtor(z, "+12125551234", &[(Sms, true)]);
    // 2026-03-08: clocks go forward at 02:00. 08:00 EDT is 12:00Z (not 13:00Z).
    let dec = decide(us, &d, &[], &[Sms], "2026-03-08T07:30:00Z");
    assert_eq!(contact_at(&dec).1, ts("2026-03-08T12:00:00Z"));
    // Chile, 2026-04-05: clocks go back at 00:00; 08:00 local is 12:00Z after the change.
    let cl = preset("CL").unwrap();
    let d = debtor("America/Santiago", "+56911112222", &[(Whatsapp, true)]);
    let dec = decide(cl, &d, &[], &[Whatsapp], "2026-04-06T03:00:00Z");
    assert_eq!(
        local(contact_at(&dec).1, "America/Santiago"),
        "Mon 2026-04-06 08:00"
    );
    assert_eq!(contact_at(&dec).1, ts("2026-04-06T12:00:00Z"));
}

#[test]
fn fail_closed_on_missing_consent_years_without_holidays_and_holds() {
    let cl = preset("CL").unwrap();
    let none = debtor("America/Santiago", "+56911112222", &[]);
    assert_eq!(
        rule(&decide(cl, &none, &[], &[Whatsapp], "2026-03-16T15:00:00Z")),
        "consent"
    );
    let opted = debtor(
        "America/Santiago",
        "+56911112222",
        &[(Whatsapp, false), (Sms, false)],
    );
    assert_eq!(
        rule(&decide(
            cl,
            &opted,
            &[],
            &[Whatsapp, Sms],
            "2026-03-16T15:00:00Z"
        )),
        "opt_out"
    );
    let d = debtor("America/Santiago", "+56911112222", &[(Whatsapp, true)]);
    let dec = decide(cl, &d, &[], &[Whatsapp], "2031-03-17T15:00:00Z");
    assert_eq!(rule(&dec), "no_holiday_data");
    for (holds, expected) in [
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
                pause_reason: Some("breathing space".into()),
                ..Holds::default()
            },
            "pause",
        ),
    ] {
        let dec = evaluate(
            cl,
            &Facts {
                debtor: &d,
                holds: &holds,
                history: &[],
                channels: &[Whatsapp],
                now: ts("2026-03-16T15:00:00Z"),
            },
        );
        assert_eq!(rule(&dec), expected);
    }
    let until = Holds {
        paused_until: Some(ts("2026-04-01T00:00:00Z")),
        ..Holds::default()
    };
    let dec = evaluate(
        cl,
        &Facts {
            debtor: &d,
            holds: &until,
            history: &[],
            channels: &[Whatsapp],
            now: ts("2026-03-16T15:00:00Z"),
        },
    );
    assert!(
        matches!(dec, Decision::Blocked { next_possible: Some(t), .. } if t == ts("2026-04-01T00:00:00Z"))
    );
}

#[test]
fn composing_takes_the_strictest_and_tenants_may_only_tighten() {
    let cl = preset("CL").unwrap();
    let us = preset("US").unwrap();
    let both = cl.compose(us);
    assert_eq!(both.id, "CL+US");
    assert_eq!(
        both.windows.on(jiff::civil::Weekday::Monday),
        &[Range::hours(8, 20)]
    );
    assert!(both.windows.on(jiff::civil::Weekday::Sunday).is_empty());
    assert!(both.holidays.contains(&"CL".to_string()) && both.holidays.contains(&"US".to_string()));
    assert_eq!(both.min_days_between, 3);
    assert!(both.opt_out_footer);
    // A Chilean tenant's debtor with a US number gets both.
    let p = policy_for("CL", "+12125551234", None).unwrap();
    assert_eq!(p.id, "CL+US");
    assert_eq!(jurisdiction_of_phone("+5511999990000"), Some("BR-SP"));
    assert_eq!(jurisdiction_of_phone("+5521999990000"), Some("BR-RJ"));
    assert!(
        policy_for("FR", "+33612345678", None).is_none(),
        "no preset: no policy, no send"
    );

    // Tightening is accepted; loosening names the field.
    let mut tighter = cl.clone();
    tighter.windows = Windows::days(&[jiff::civil::Weekday::Monday], Range::hours(9, 18));
    tighter.min_days_between = 4;
    tighter.check_tightens(cl).unwrap();
    let mut looser = cl.clone();
    looser.windows = Windows::days(&[jiff::civil::Weekday::Sunday], Range::hours(9, 18));
    assert_eq!(
        looser.check_tightens(cl).unwrap_err().field,
        "windows.sunday[0]"
    );
    let mut looser = cl.clone();
    looser.caps[0].max = 5;
    assert_eq!(looser.check_tightens(cl).unwrap_err().field, "caps[0].max");
    let mut looser = cl.clone();
    looser.holidays.clear();
    assert_eq!(looser.check_tightens(cl).unwrap_err().field, "holidays");
    let mut looser = cl.clone();
    looser.consent_required.clear();
    assert_eq!(
        looser.check_tightens(cl).unwrap_err().field,
        "consent_required"
    );
    // Validation names the field too.
    let mut bad = cl.clone();
    bad.caps[1].days = 0;
    assert_eq!(bad.validate().unwrap_err().field, "caps[1].days");
    let mut bad = cl.clone();
    bad.holidays.push("XX".into());
    assert_eq!(bad.validate().unwrap_err().field, "holidays[1]");
}

const ZONES: [(&str, &str); 8] = [
    ("America/Santiago", "+56911112222"),
    ("America/Bogota", "+573001112222"),
    ("America/Lima", "+51911112222"),
    ("America/Mexico_City", "+525512345678"),
    ("Europe/Madrid", "+34612345678"),
    ("America/Sao_Paulo", "+5511999990000"),
    ("America/New_York", "+12125551234"),
    ("Europe/London", "+447700900123"),
];

fn channel() -> impl Strategy<Value = ChannelKind> {
    prop_oneof![Just(Whatsapp), Just(Sms), Just(Email)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// Whatever the preset, zone, clock, consents, holds and history: a contact the engine
    /// allows is inside the window, not on a holiday, under every cap and the daily limit, past
    /// the gap, on a channel with consent and no opt-out, and never during a hold.
    #[test]
    fn no_allowed_contact_breaks_a_rule(
        preset_i in 0usize..11,
        zone_i in 0usize..8,
        now_secs in 1_767_225_600i64..1_924_992_000i64, // 2026-01-01 .. 2030-12-31
        consents in proptest::collection::vec((channel(), any::<bool>()), 0..4),
        history in proptest::collection::vec((0i64..(20 * 86_400), channel()), 0..10),
        channels in proptest::collection::vec(channel(), 1..4),
        paused in any::<bool>(),
        dispute in any::<bool>(),
    ) {
        let policy = &presets()[preset_i];
        let (zone, phone) = ZONES[zone_i];
        let d = debtor(zone, phone, &consents);
        let now = Timestamp::from_second(now_secs).unwrap();
        let history: Vec<PastContact> = history
            .into_iter()
            .map(|(ago, channel)| PastContact { at: now.checked_sub(SignedDuration::from_secs(ago)).unwrap(), channel })
            .collect();
        let holds = Holds { paused, dispute_open: dispute, ..Holds::default() };
        let dec = evaluate(policy, &Facts { debtor: &d, holds: &holds, history: &history, channels: &channels, now });
        if let Decision::Contact { channel, at, .. } = dec {
            prop_assert!(!paused && !dispute, "contact during a hold");
            prop_assert!(at >= now);
            prop_assert!(channels.contains(&channel));
            let latest = d.consents.iter().filter(|c| c.channel == channel).max_by_key(|c| c.at);
            prop_assert!(latest.is_none_or(|c| c.granted), "after an opt-out");
            if policy.consent_required.contains(&channel) {
                prop_assert!(latest.is_some_and(|c| c.granted), "without consent");
            }
            let tz = d.time_zone.tz();
            let l = at.to_zoned(tz.clone());
            let minute = l.hour() as u16 * 60 + l.minute() as u16;
            prop_assert!(policy.windows.on(l.weekday()).iter().any(|r| r.start <= minute && minute < r.end), "outside the window: {l}");
            for cal in &policy.holidays {
                prop_assert!(!holidays::is_holiday(cal, l.date()).unwrap(), "on a holiday: {l}");
            }
            for cap in policy.caps.iter().filter(|c| c.counts(channel)) {
                let since = at.checked_sub(SignedDuration::from_hours(24 * cap.days as i64)).unwrap();
                let n = history.iter().filter(|h| cap.counts(h.channel) && h.at > since && h.at <= at).count() as u32;
                prop_assert!(n < cap.max, "over {}", cap.id());
            }
            if let Some(max) = policy.max_per_day {
                let n = history.iter().filter(|h| h.at.to_zoned(tz.clone()).date() == l.date()).count() as u32;
                prop_assert!(n < max, "over the daily limit");
            }
            if let Some(last) = history.iter().filter(|h| h.at <= at).map(|h| h.at.to_zoned(tz.clone()).date()).max() {
                prop_assert!((l.date() - last).get_days() >= policy.min_days_between as i32, "under the gap");
            }
        }
    }

    /// `next_possible` is never in the past, and a decision asked again at that instant is not
    /// blocked by the same pause.
    #[test]
    fn a_pause_ends_when_it_says(now_secs in 1_767_225_600i64..1_900_000_000i64, days in 1i64..90) {
        let policy = preset("GB").unwrap();
        let d = debtor("Europe/London", "+447700900123", &[(Sms, true)]);
        let now = Timestamp::from_second(now_secs).unwrap();
        let until = now.checked_add(SignedDuration::from_hours(24 * days)).unwrap();
        let holds = Holds { paused_until: Some(until), ..Holds::default() };
        let dec = evaluate(policy, &Facts { debtor: &d, holds: &holds, history: &[], channels: &[Sms], now });
        let Decision::Blocked { next_possible: Some(next), .. } = dec else { panic!("{dec:?}") };
        prop_assert_eq!(next, until);
        let again = evaluate(policy, &Facts { debtor: &d, holds: &holds, history: &[], channels: &[Sms], now: next });
        prop_assert!(matches!(again, Decision::Contact { .. }), "{again:?}");
    }
}
