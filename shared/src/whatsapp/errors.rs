//! Meta's error codes → what the sender does. Branch on the code (then the subcode), never on
//! the HTTP status or the title: Meta says titles change, and its statuses are unreliable (400
//! is seen where 429 or 401 is documented). The table, with what each class leads to, is in
//! docs/whatsapp-errors.md.

use serde::Deserialize;

use crate::ports::FailureClass;

/// The Graph API's error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphErrorBody {
    pub error: GraphError,
}

/// `error` of a failed Graph API call. Every field is optional: Meta adds and drops them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    /// `OAuthException`, `GraphMethodException`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    /// Meta's support asks for it: log it with every failure.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    #[serde(default)]
    pub error_user_title: Option<String>,
    #[serde(default)]
    pub error_user_msg: Option<String>,
    #[serde(default)]
    pub is_transient: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

/// Temporary on Meta's side: retry with backoff and jitter.
const TRANSIENT: &[i64] = &[1, 2, 131000, 131016, 133004, 131057];
/// The number, the WABA or the app is over its rate: slow down.
const THROTTLED: &[i64] = &[4, 80007, 130429];
/// Too many messages to one user (1 per 6 s): retry that recipient only, later.
const RECIPIENT_BUSY: &[i64] = &[131056];
/// Free-form outside the 24-hour customer-service window.
const OUTSIDE_WINDOW: &[i64] = &[131047];
/// This user cannot get this message on WhatsApp: try the next channel.
const UNREACHABLE: &[i64] = &[131026, 131021, 131030];
/// Refusals of this request that a retry would only repeat: marketing caps (131049 per-user
/// limit, 131050 user stopped marketing, 130472 experiment) and request bugs (bad parameter,
/// media, template missing, paused or disabled). Any other code on a 4xx lands here too; the
/// list is what `GraphError::class` trusts over `is_transient`.
const REJECTED: &[i64] = &[
    131049, 131050, 130472, 100, 131008, 131009, 131051, 131052, 131053, 132000, 132001, 132005,
    132007, 132012, 132015, 132016,
];
/// The template itself is at fault (rejected, within `REJECTED`): 132000 parameter count,
/// 132001 missing in the language, 132005 text too long, 132007 format policy, 132012
/// parameter format, 132015 paused, 132016 disabled. Not the debtor's doing nor the message's:
/// the sender tries the next channel rather than let a misregistered template stop collection
/// on WhatsApp, and tells an operator.
const TEMPLATE_FAULT: &[i64] = &[132000, 132001, 132005, 132007, 132012, 132015, 132016];

/// Whether Meta refused a template message for a fault of the template (`TEMPLATE_FAULT`).
pub fn is_template_fault(code: Option<i64>) -> bool {
    code.is_some_and(|c| TEMPLATE_FAULT.contains(&c))
}

/// The whole account cannot send: token, permissions, policy, payment, registration. Some
/// libraries retry 131048 and 368; Meta describes both as quality or policy restrictions, and
/// retrying them is what gets a number blocked. 200–299 (permissions) is a range, checked apart.
const STOP_TENANT: &[i64] = &[
    0, 3, 10, 190, 368, 131005, 131031, 130497, 131042, 131048, 131064, 133010,
];

/// The class of a Graph API failure. `http_status` 0 means unknown (a `failed` status
/// webhook); `code` and `subcode` are Meta's. The code decides whenever Meta gave a known one;
/// the HTTP status only decides for unknown or missing codes. No subcode changes the class
/// today (190 is account-wide whatever the subcode, 463 being the expired token).
pub fn classify(http_status: u16, code: Option<i64>, _subcode: Option<i64>) -> FailureClass {
    let Some(code) = code else {
        return match http_status {
            429 => FailureClass::Throttled,
            500..=599 => FailureClass::Transient,
            // Unauthorized or forbidden without a Graph error: a proxy or a revoked token.
            401 | 403 => FailureClass::StopTenant,
            _ => FailureClass::Rejected,
        };
    };
    let is = |set: &[i64]| set.contains(&code);
    if is(TRANSIENT) {
        FailureClass::Transient
    } else if is(THROTTLED) {
        FailureClass::Throttled
    } else if is(RECIPIENT_BUSY) {
        FailureClass::RecipientBusy
    } else if is(OUTSIDE_WINDOW) {
        FailureClass::OutsideWindow
    } else if is(UNREACHABLE) {
        FailureClass::Unreachable
    } else if is(STOP_TENANT) || (200..=299).contains(&code) {
        FailureClass::StopTenant
    } else if is(REJECTED) {
        FailureClass::Rejected
    } else if (500..=599).contains(&http_status) {
        // A code we do not know on a server error: Meta's side, worth a bounded retry.
        FailureClass::Transient
    } else {
        FailureClass::Rejected
    }
}

impl GraphError {
    /// `classify`, plus Meta's own `is_transient` hint for codes this table does not know: an
    /// unknown code Meta calls transient is retried (a bounded number of times) rather than
    /// failed. A listed code keeps its class whatever the hint says.
    pub fn class(&self, http_status: u16) -> FailureClass {
        let class = classify(http_status, self.code, self.error_subcode);
        let known = self.code.is_some_and(|c| REJECTED.contains(&c));
        if class == FailureClass::Rejected && !known && self.is_transient == Some(true) {
            FailureClass::Transient
        } else {
            class
        }
    }

    /// The most useful human text: Meta's details, else the message, else the user title.
    pub fn reason(&self) -> &str {
        self.error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .filter(|d| !d.is_empty())
            .or(Some(self.message.as_str()).filter(|m| !m.is_empty()))
            .or(self.error_user_title.as_deref())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;

    /// The reference's §3.2 table, code by code.
    fn table() -> Vec<(i64, FailureClass)> {
        let rows: &[(&[i64], FailureClass)] = &[
            (&[1, 2, 131000, 131016, 133004, 131057], Transient),
            (&[4, 80007, 130429], Throttled),
            (&[131056], RecipientBusy),
            (&[131047], OutsideWindow),
            (&[131026, 131021, 131030], Unreachable),
            (
                &[
                    131049, 131050, 130472, 100, 131008, 131009, 131051, 131052, 131053, 132000,
                    132001, 132005, 132007, 132012, 132015, 132016,
                ],
                Rejected,
            ),
            (
                &[
                    0, 190, 3, 10, 200, 201, 250, 298, 299, 131005, 368, 131031, 130497, 131042,
                    131048, 131064, 133010,
                ],
                StopTenant,
            ),
        ];
        rows.iter()
            .flat_map(|(codes, class)| codes.iter().map(|c| (*c, *class)))
            .collect()
    }

    #[test]
    fn every_listed_code_has_its_class_whatever_the_http_status() {
        // The code wins over the status: Meta's statuses are unreliable (0 = status webhook).
        for (code, class) in table() {
            for status in [0, 200, 400, 401, 403, 429, 500, 503] {
                assert_eq!(
                    classify(status, Some(code), None),
                    class,
                    "code {code}, HTTP {status}"
                );
            }
        }
    }

    #[test]
    fn template_faults_are_rejections_of_the_template_only() {
        for code in TEMPLATE_FAULT {
            assert!(REJECTED.contains(code), "{code}");
            assert_eq!(classify(400, Some(*code), None), Rejected);
            assert!(is_template_fault(Some(*code)));
        }
        // Faults of the message or caps of the user are not the template's.
        for code in [100, 131008, 131009, 131049, 131050, 131026] {
            assert!(!is_template_fault(Some(code)), "{code}");
        }
        assert!(!is_template_fault(None));
    }

    #[test]
    fn the_lists_do_not_overlap() {
        let lists = [
            TRANSIENT,
            THROTTLED,
            RECIPIENT_BUSY,
            OUTSIDE_WINDOW,
            UNREACHABLE,
            REJECTED,
            STOP_TENANT,
        ];
        let all: Vec<i64> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        for code in &all {
            assert_eq!(all.iter().filter(|c| *c == code).count(), 1, "code {code}");
            assert!(
                !(200..=299).contains(code),
                "{code} is in the 200–299 range"
            );
        }
    }

    #[test]
    fn no_code_and_unknown_codes_fall_back_on_the_http_status() {
        assert_eq!(classify(500, None, None), Transient);
        assert_eq!(classify(503, None, None), Transient);
        assert_eq!(classify(429, None, None), Throttled);
        assert_eq!(classify(401, None, None), StopTenant);
        assert_eq!(classify(403, None, None), StopTenant);
        assert_eq!(classify(400, None, None), Rejected);
        assert_eq!(classify(0, None, None), Rejected);
        assert_eq!(classify(502, Some(999_999), None), Transient);
        assert_eq!(classify(400, Some(999_999), None), Rejected);
        assert_eq!(classify(404, Some(12), None), Rejected);
        assert_eq!(classify(0, Some(999_999), None), Rejected);
        // Just outside the permission range.
        assert_eq!(classify(400, Some(199), None), Rejected);
        assert_eq!(classify(400, Some(300), None), Rejected);
    }

    #[test]
    fn subcodes_do_not_change_the_class() {
        for sub in [None, Some(463), Some(460), Some(467), Some(2494055)] {
            assert_eq!(classify(401, Some(190), sub), StopTenant);
            assert_eq!(classify(400, Some(130429), sub), Throttled);
        }
    }

    #[test]
    fn is_transient_only_rescues_unknown_codes() {
        let e = |code: Option<i64>, t: Option<bool>| GraphError {
            message: String::new(),
            kind: None,
            code,
            error_subcode: None,
            error_data: None,
            fbtrace_id: None,
            error_user_title: None,
            error_user_msg: None,
            is_transient: t,
        };
        assert_eq!(e(Some(999_999), Some(true)).class(400), Transient);
        assert_eq!(e(Some(999_999), Some(false)).class(400), Rejected);
        assert_eq!(e(Some(999_999), None).class(400), Rejected);
        assert_eq!(e(Some(132000), Some(true)).class(400), Rejected);
        assert_eq!(e(Some(190), Some(true)).class(400), StopTenant);
        assert_eq!(e(Some(131047), Some(true)).class(400), OutsideWindow);
    }

    #[test]
    fn the_envelope_parses_with_optional_and_unknown_fields() {
        let body = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException",
            "code":130429,"error_data":{"messaging_product":"whatsapp","details":"too many"},
            "error_subcode":2494055,"fbtrace_id":"Az8","is_transient":true,"new_field":1,
            "error_user_title":"Slow down","error_user_msg":"Try later"}}"#;
        let e: GraphErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(e.error.code, Some(130429));
        assert_eq!(e.error.error_subcode, Some(2494055));
        assert_eq!(e.error.is_transient, Some(true));
        assert_eq!(e.error.error_user_title.as_deref(), Some("Slow down"));
        assert_eq!(e.error.error_user_msg.as_deref(), Some("Try later"));
        assert_eq!(e.error.reason(), "too many");
        assert_eq!(e.error.class(400), Throttled);
        let bare: GraphErrorBody = serde_json::from_str(r#"{"error":{"message":"x"}}"#).unwrap();
        assert_eq!(bare.error.class(500), Transient);
        assert_eq!(bare.error.reason(), "x");
    }

    /// `../shared/fixtures`, or `COBRO_FIXTURES`.
    fn fixtures() -> std::path::PathBuf {
        std::env::var_os("COBRO_FIXTURES")
            .map(Into::into)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures").into())
    }

    struct Expected {
        code: i64,
        subcode: Option<i64>,
        kind: &'static str,
        trace: &'static str,
        details: Option<&'static str>,
        class: FailureClass,
    }

    fn expected(file: &str) -> Option<Expected> {
        let x = |code, subcode, kind, trace, details, class| Expected {
            code,
            subcode,
            kind,
            trace,
            details,
            class,
        };
        Some(match file {
            "error_100_subcode_33_object_not_found.json" => x(
                100,
                Some(33),
                "GraphMethodException",
                "AeadGx6xI8M9EVqcy11ynej",
                None,
                Rejected,
            ),
            "error_130429_rate_limit.json" => x(
                130429,
                Some(2494055),
                "OAuthException",
                "Az8or2yhqkZfEZ-_4Qn_Bam",
                Some("Message failed to send because there were too many messages sent from this phone number in a short period of time"),
                Throttled,
            ),
            "error_190_invalid_oauth_token.json" => x(
                190,
                None,
                "OAuthException",
                "Azr7Sq738VC5zzOnPvZzPwj",
                None,
                StopTenant,
            ),
            "error_190_subcode_463_token_expired.json" => x(
                190,
                Some(463),
                "OAuthException",
                "ACEyrTehk6IAd0lm05Ixogh",
                None,
                StopTenant,
            ),
            _ => return None,
        })
    }

    #[test]
    fn every_error_fixture_parses_and_classifies() {
        let dir = fixtures().join("whatsapp-send");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if !(name.starts_with("error_") && name.ends_with(".json")) {
                continue;
            }
            let want = expected(&name).unwrap_or_else(|| panic!("no expectation for {name}"));
            let body: GraphErrorBody = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let e = &body.error;
            assert_eq!(e.code, Some(want.code), "{name}");
            assert_eq!(e.error_subcode, want.subcode, "{name}");
            assert_eq!(e.kind.as_deref(), Some(want.kind), "{name}");
            assert_eq!(e.fbtrace_id.as_deref(), Some(want.trace), "{name}");
            assert_eq!(
                e.error_data.as_ref().and_then(|d| d.details.as_deref()),
                want.details,
                "{name}"
            );
            assert!(!e.message.is_empty(), "{name}");
            // Meta answers these with 400/401/429 or a bare 400; the class must not depend on it.
            for status in [400, 401, 403, 429] {
                assert_eq!(e.class(status), want.class, "{name} at HTTP {status}");
            }
            assert_eq!(classify(400, e.code, e.error_subcode), want.class, "{name}");
            seen += 1;
        }
        assert_eq!(seen, 4, "error fixtures in {}", dir.display());
    }
}
