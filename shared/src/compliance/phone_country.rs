//! The country a phone number belongs to, from its E.164 calling code (ITU-T E.164 assignments)
//! and, inside the North American Numbering Plan, its area code. The compliance engine must
//! know where a debtor is before it applies a law: a number it cannot place, or one placed in a
//! country with no preset, is no send (fail closed). A number says where it was issued, not
//! where its holder is; cobro has nothing better to go on.

/// ISO 3166-1 alpha-2 country of an E.164 number (`+593…` → `EC`, `+1787…` → `PR`); `None`
/// when the calling code is no country's (unassigned, or a global service such as `+800`).
pub fn country_of_phone(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if let Some(national) = digits.strip_prefix('1') {
        return Some(nanp_country(national));
    }
    // Calling codes are prefix-free, except Kazakhstan's +76/+77 inside Russia's +7: the
    // longest that matches. Binary search, since the engine asks on every decision.
    (1..=3)
        .rev()
        .filter_map(|n| digits.get(..n))
        .find_map(|p| {
            CALLING_CODES
                .binary_search_by(|(code, _)| code.cmp(&p))
                .ok()
        })
        .map(|i| CALLING_CODES[i].1)
}

/// The country of a North American number by its area code: the United States unless the
/// code is another member's (Canada, the Caribbean) or a US territory's, which keeps its own
/// ISO code and time zone. Area codes new since this list (NANPA) fall to the United States.
fn nanp_country(national: &str) -> &'static str {
    let Some(area) = national.get(..3) else {
        return "US";
    };
    NANP_AREAS
        .iter()
        .find(|(codes, _)| codes.contains(&area))
        .map_or("US", |(_, country)| *country)
}

const NANP_AREAS: &[(&[&str], &str)] = &[
    (
        &[
            "204", "226", "236", "249", "250", "257", "263", "289", "306", "343", "354", "365",
            "367", "368", "382", "403", "416", "418", "428", "431", "437", "438", "450", "468",
            "474", "506", "514", "519", "548", "579", "581", "584", "587", "600", "604", "613",
            "622", "639", "647", "672", "683", "705", "709", "742", "753", "778", "780", "782",
            "807", "819", "825", "867", "873", "879", "902", "905", "942",
        ],
        "CA",
    ),
    (&["242"], "BS"),
    (&["246"], "BB"),
    (&["264"], "AI"),
    (&["268"], "AG"),
    (&["284"], "VG"),
    (&["345"], "KY"),
    (&["441"], "BM"),
    (&["473"], "GD"),
    (&["649"], "TC"),
    (&["658", "876"], "JM"),
    (&["664"], "MS"),
    (&["721"], "SX"),
    (&["758"], "LC"),
    (&["767"], "DM"),
    (&["784"], "VC"),
    (&["809", "829", "849"], "DO"),
    (&["868"], "TT"),
    (&["869"], "KN"),
    // US territories: US federal law (the FDCPA's "State" includes them), their own clocks.
    (&["340"], "VI"),
    (&["670"], "MP"),
    (&["671"], "GU"),
    (&["684"], "AS"),
    (&["787", "939"], "PR"),
];

/// ITU-T E.164 calling codes outside zone 1, in text order, with the country each serves. Where a code serves
/// several territories (`+262` Réunion and Mayotte) the main one is named: only presets matter.
const CALLING_CODES: &[(&str, &str)] = &[
    ("20", "EG"),
    ("211", "SS"),
    ("212", "MA"),
    ("213", "DZ"),
    ("216", "TN"),
    ("218", "LY"),
    ("220", "GM"),
    ("221", "SN"),
    ("222", "MR"),
    ("223", "ML"),
    ("224", "GN"),
    ("225", "CI"),
    ("226", "BF"),
    ("227", "NE"),
    ("228", "TG"),
    ("229", "BJ"),
    ("230", "MU"),
    ("231", "LR"),
    ("232", "SL"),
    ("233", "GH"),
    ("234", "NG"),
    ("235", "TD"),
    ("236", "CF"),
    ("237", "CM"),
    ("238", "CV"),
    ("239", "ST"),
    ("240", "GQ"),
    ("241", "GA"),
    ("242", "CG"),
    ("243", "CD"),
    ("244", "AO"),
    ("245", "GW"),
    ("246", "IO"),
    ("247", "SH"),
    ("248", "SC"),
    ("249", "SD"),
    ("250", "RW"),
    ("251", "ET"),
    ("252", "SO"),
    ("253", "DJ"),
    ("254", "KE"),
    ("255", "TZ"),
    ("256", "UG"),
    ("257", "BI"),
    ("258", "MZ"),
    ("260", "ZM"),
    ("261", "MG"),
    ("262", "RE"),
    ("263", "ZW"),
    ("264", "NA"),
    ("265", "MW"),
    ("266", "LS"),
    ("267", "BW"),
    ("268", "SZ"),
    ("269", "KM"),
    ("27", "ZA"),
    ("290", "SH"),
    ("291", "ER"),
    ("297", "AW"),
    ("298", "FO"),
    ("299", "GL"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("350", "GI"),
    ("351", "PT"),
    ("352", "LU"),
    ("353", "IE"),
    ("354", "IS"),
    ("355", "AL"),
    ("356", "MT"),
    ("357", "CY"),
    ("358", "FI"),
    ("359", "BG"),
    ("36", "HU"),
    ("370", "LT"),
    ("371", "LV"),
    ("372", "EE"),
    ("373", "MD"),
    ("374", "AM"),
    ("375", "BY"),
    ("376", "AD"),
    ("377", "MC"),
    ("378", "SM"),
    ("379", "VA"),
    ("380", "UA"),
    ("381", "RS"),
    ("382", "ME"),
    ("383", "XK"),
    ("385", "HR"),
    ("386", "SI"),
    ("387", "BA"),
    ("389", "MK"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("420", "CZ"),
    ("421", "SK"),
    ("423", "LI"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("500", "FK"),
    ("501", "BZ"),
    ("502", "GT"),
    ("503", "SV"),
    ("504", "HN"),
    ("505", "NI"),
    ("506", "CR"),
    ("507", "PA"),
    ("508", "PM"),
    ("509", "HT"),
    ("51", "PE"),
    ("52", "MX"),
    ("53", "CU"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("58", "VE"),
    ("590", "GP"),
    ("591", "BO"),
    ("592", "GY"),
    ("593", "EC"),
    ("594", "GF"),
    ("595", "PY"),
    ("596", "MQ"),
    ("597", "SR"),
    ("598", "UY"),
    ("599", "CW"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("670", "TL"),
    ("672", "NF"),
    ("673", "BN"),
    ("674", "NR"),
    ("675", "PG"),
    ("676", "TO"),
    ("677", "SB"),
    ("678", "VU"),
    ("679", "FJ"),
    ("680", "PW"),
    ("681", "WF"),
    ("682", "CK"),
    ("683", "NU"),
    ("685", "WS"),
    ("686", "KI"),
    ("687", "NC"),
    ("688", "TV"),
    ("689", "PF"),
    ("690", "TK"),
    ("691", "FM"),
    ("692", "MH"),
    ("7", "RU"),
    ("76", "KZ"),
    ("77", "KZ"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("850", "KP"),
    ("852", "HK"),
    ("853", "MO"),
    ("855", "KH"),
    ("856", "LA"),
    ("86", "CN"),
    ("880", "BD"),
    ("886", "TW"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("93", "AF"),
    ("94", "LK"),
    ("95", "MM"),
    ("960", "MV"),
    ("961", "LB"),
    ("962", "JO"),
    ("963", "SY"),
    ("964", "IQ"),
    ("965", "KW"),
    ("966", "SA"),
    ("967", "YE"),
    ("968", "OM"),
    ("970", "PS"),
    ("971", "AE"),
    ("972", "IL"),
    ("973", "BH"),
    ("974", "QA"),
    ("975", "BT"),
    ("976", "MN"),
    ("977", "NP"),
    ("98", "IR"),
    ("992", "TJ"),
    ("993", "TM"),
    ("994", "AZ"),
    ("995", "GE"),
    ("996", "KG"),
    ("998", "UZ"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_placed_by_calling_code_and_north_american_area_code() {
        for (phone, country) in [
            ("+56911112222", Some("CL")),
            ("+593991234567", Some("EC")),
            ("+5511999990000", Some("BR")),
            ("+34612345678", Some("ES")),
            ("+351912345678", Some("PT")),
            ("+447700900123", Some("GB")),
            ("+79161234567", Some("RU")),
            ("+77011234567", Some("KZ")),
            ("+12125551234", Some("US")),
            ("+14165551234", Some("CA")),
            ("+18095551234", Some("DO")),
            ("+17875551234", Some("PR")),
            ("+16715551234", Some("GU")),
            // Unassigned zone-8 code, a global freephone number, not E.164 at all.
            ("+8712345678", None),
            ("+80012345678", None),
            ("56911112222", None),
        ] {
            assert_eq!(country_of_phone(phone), country, "{phone}");
        }
    }

    #[test]
    fn calling_codes_are_sorted_unique_and_prefix_free_but_for_kazakhstan() {
        assert!(CALLING_CODES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        for (i, (a, _)) in CALLING_CODES.iter().enumerate() {
            assert!(
                a.bytes().all(|b| b.is_ascii_digit()) && !a.starts_with('1'),
                "{a}"
            );
            for (b, _) in &CALLING_CODES[i + 1..] {
                let nested = a.starts_with(b) || b.starts_with(a);
                assert!(!nested || [a, b].contains(&&"7"), "{a} and {b}");
            }
        }
        let areas: Vec<&str> = NANP_AREAS
            .iter()
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        for (i, a) in areas.iter().enumerate() {
            assert!(a.len() == 3 && !areas[i + 1..].contains(a), "{a}");
        }
    }
}
