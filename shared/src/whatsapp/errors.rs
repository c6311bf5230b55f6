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

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
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
/// The whole account cannot send: token, permissions, policy, payment, registration. Some
/// libraries retry 131048 and 368; Meta describes both as quality or policy restrictions, and
/// retrying them is what gets a number blocked.
const STOP_TENANT: &[i64] = &[
    0, 3, 10, 190, 368, 131005, 131031, 130497, 131042, 131048, 131064, 133010,
];

/// The class of a Graph API failure. `http_status` 0 means unknown (a `failed` status
/// webhook); `code` and `subcode` are Meta's.
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
        // 200–299: permission errors of the Graph API.
        FailureClass::StopTenant
    } else if (500..=599).contains(&http_status) {
        FailureClass::Transient
    } else {
        // Request bugs (100, 131008, 131009, 131051–131053, 132000–132016 …) and marketing
        // caps (131049, 131050, 130472): retrying sends the same refusal.
        FailureClass::Rejected
    }
}

impl GraphError {
    pub fn class(&self, http_status: u16) -> FailureClass {
        classify(http_status, self.code, self.error_subcode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;

    #[test]
    fn every_listed_code_has_its_class() {
        let table: &[(&[i64], FailureClass)] = &[
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
                    0, 190, 3, 10, 200, 250, 299, 131005, 368, 131031, 130497, 131042, 131048,
                    131064, 133010,
                ],
                StopTenant,
            ),
        ];
        for (codes, class) in table {
            for code in *codes {
                assert_eq!(classify(400, Some(*code), None), *class, "code {code}");
            }
        }
        assert_eq!(
            classify(190, Some(190), Some(463)),
            StopTenant,
            "expired token"
        );
        assert_eq!(classify(503, None, None), Transient);
        assert_eq!(
            classify(502, Some(999_999), None),
            Transient,
            "unknown code, 5xx"
        );
        assert_eq!(
            classify(400, Some(999_999), None),
            Rejected,
            "unknown code, 4xx"
        );
        assert_eq!(classify(429, None, None), Throttled);
        assert_eq!(
            classify(0, Some(131047), None),
            OutsideWindow,
            "from a status webhook"
        );
    }

    #[test]
    fn the_envelope_parses_with_optional_fields() {
        let body = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException",
            "code":130429,"error_data":{"messaging_product":"whatsapp","details":"too many"},
            "error_subcode":2494055,"fbtrace_id":"Az8","is_transient":true,"new_field":1}}"#;
        let e: GraphErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(e.error.code, Some(130429));
        assert_eq!(e.error.error_subcode, Some(2494055));
        assert_eq!(e.error.class(400), Throttled);
        let bare: GraphErrorBody = serde_json::from_str(r#"{"error":{"message":"x"}}"#).unwrap();
        assert_eq!(bare.error.class(500), Transient);
    }
}
