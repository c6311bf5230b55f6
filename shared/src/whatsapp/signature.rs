//! Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Checks the header against the exact raw bytes, in constant time. Any re-serialized body
/// would break it (Meta escapes `/` and non-ASCII), so callers pass the bytes as received.
pub fn verify(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(raw_body);
    mac.verify_slice(&expected).is_ok()
}

/// The header value for a body: what Meta sends, and what the sandbox page and tests send.
pub fn sign(app_secret: &[u8], raw_body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Constant-time equality for the verify token of the GET handshake.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_reject_tampering() {
        let body = br#"{"object":"whatsapp_business_account","x":"a\/b"}"#;
        let sig = sign(b"secret", body);
        assert!(verify(b"secret", body, Some(&sig)));
        assert!(!verify(b"other", body, Some(&sig)));
        assert!(!verify(
            b"secret",
            br#"{"object":"whatsapp_business_account","x":"a/b"}"#,
            Some(&sig)
        ));
        assert!(!verify(b"secret", body, None));
        assert!(!verify(b"secret", body, Some("sha256=zz")));
        assert!(!verify(
            b"secret",
            body,
            Some(sig.trim_start_matches("sha256="))
        ));
        assert!(
            tokens_match("abc", "abc") && !tokens_match("abc", "abd") && !tokens_match("ab", "abc")
        );
    }
}
