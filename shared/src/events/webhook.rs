//! A tenant's webhook: what is posted to it, how it is signed, and when a failed delivery is
//! tried again. No I/O here; the `events-out` function does the posting.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The header with the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`, one `v1` per secret in
/// use (two while a rotated secret is still honoured).
pub const SIGNATURE_HEADER: &str = "Cobro-Signature";
pub const EVENT_ID_HEADER: &str = "Cobro-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Cobro-Event-Type";
pub const ATTEMPT_HEADER: &str = "Cobro-Delivery-Attempt";

/// How long after a delivery a receiver should still accept its time stamp (it guards against
/// replays; documented for receivers, who check it).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// When each attempt is made, counted from the event: the first at once, then with growing
/// pauses, for about two days. After the last one the delivery is kept as failed, to be listed and
/// sent again from the API.
pub const SCHEDULE: [Duration; 9] = [
    Duration::ZERO,
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
    Duration::from_secs(12 * 60 * 60),
    Duration::from_secs(24 * 60 * 60),
];

/// The pause after failed attempt `attempt` (1-based) before the next, or `None` after the last.
pub fn backoff(schedule: &[Duration], attempt: u32) -> Option<Duration> {
    schedule.get(attempt as usize).copied()
}

/// The body posted to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// Stable across retries and re-publications of the same event: receivers dedupe on it.
    pub id: String,
    /// The event's detail type (`PaymentApplied` …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When cobro published it (UTC).
    pub created_at: Timestamp,
    /// The event's detail, as documented in `docs/events.md`.
    pub data: serde_json::Value,
}

/// The id of an event: a hash of its type and detail, so the same event published twice (an
/// at-least-once publisher retrying) is one delivery.
pub fn event_id(detail_type: &str, detail: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(detail_type.as_bytes());
    h.update([0]);
    // serde_json's maps are ordered by key (no `preserve_order`), so equal details hash alike.
    h.update(detail.to_string().as_bytes());
    format!("evt_{}", &hex::encode(h.finalize())[..32])
}

/// `t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of `<unix>.<body>` under each secret.
pub fn signature(secrets: &[&str], at: Timestamp, body: &[u8]) -> String {
    let t = at.as_second();
    let mut out = format!("t={t}");
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push_str(",v1=");
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    out
}

/// What a receiver does (and what the tests do, as a receiver would): the header is well formed,
/// its time within `tolerance` of `now`, and one `v1` matches under `secret`.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), &'static str> {
    let mut t = None;
    let mut sigs = vec![];
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or("no time stamp")?;
    if (now.as_second() - t).unsigned_abs() > tolerance.as_secs() {
        return Err("the time stamp is outside the tolerance");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let ok = sigs.iter().any(|s| {
        hex::decode(s).is_ok_and(|s| {
            use subtle::ConstantTimeEq;
            s.ct_eq(&expected).into()
        })
    });
    if ok {
        Ok(())
    } else {
        Err("no signature matches")
    }
}

/// The message that wakes a delivery up on the events-out queue (for its next attempt, or when
/// the CRM API restarts a failed one).
pub fn wake_message(tenant: &crate::domain::TenantId, id: &str) -> String {
    serde_json::json!({ "wake": { "tenant": tenant, "id": id } }).to_string()
}

/// A new signing secret: 32 random bytes, shown to the tenant once.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    format!("whsec_{}", hex::encode(bytes))
}

/// What a webhook may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// A deployment: only public addresses, over https. A tenant's URL must not reach what the
    /// function itself can (the Lambda Runtime API on loopback, the instance metadata, a VPC).
    Public,
    /// The local stack and tests: also `http://` to a loopback host on this machine.
    AlsoLoopback,
}

/// Whether an address is one the internet routes to: not loopback, private (RFC 1918, unique
/// local), link-local (the cloud metadata endpoints), shared (CGNAT), unspecified, broadcast,
/// multicast or documentation; an IPv4-mapped IPv6 address as its IPv4 one.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Where a webhook may point: `https://` (to a public host for `Targets::Public`), or, for
/// `Targets::AlsoLoopback`, `http://` to a loopback host (a receiver on the same machine, as
/// in the local stack). No credentials in the URL, no fragment. A host name is checked again
/// when it is resolved (`PublicResolver`).
pub fn check_url(raw: &str, targets: Targets) -> Result<(), String> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| "must be an absolute https:// URL".to_string())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    if raw.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    if raw.contains('#') {
        return Err("must not have a fragment".into());
    }
    if host.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("is not a valid URL".into());
    }
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .ok();
    if targets == Targets::Public
        && (host.eq_ignore_ascii_case("localhost") || literal.is_some_and(|ip| !is_public(ip)))
    {
        return Err("must point at a public address (not loopback, private or link-local)".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if loopback && targets == Targets::AlsoLoopback => Ok(()),
        "http" if targets == Targets::AlsoLoopback => {
            Err("must use https (http only to a loopback host)".into())
        }
        _ => Err("must be an https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_under_its_secret_only() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let header = signature(&["whsec_a"], at, b"{\"x\":1}");
        assert!(header.starts_with("t=1800000000,v1="));
        assert_eq!(
            verify("whsec_a", &header, b"{\"x\":1}", at, TOLERANCE),
            Ok(())
        );
        assert!(verify("whsec_b", &header, b"{\"x\":1}", at, TOLERANCE).is_err());
        assert!(verify("whsec_a", &header, b"{\"x\":2}", at, TOLERANCE).is_err());
        let late = Timestamp::from_second(1_800_000_301).unwrap();
        assert_eq!(
            verify("whsec_a", &header, b"{\"x\":1}", late, TOLERANCE),
            Err("the time stamp is outside the tolerance")
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let header = signature(&["new", "old"], at, b"body");
        assert_eq!(header.matches("v1=").count(), 2);
        assert!(verify("new", &header, b"body", at, TOLERANCE).is_ok());
        assert!(verify("old", &header, b"body", at, TOLERANCE).is_ok());
    }

    #[test]
    fn the_same_event_has_the_same_id() {
        let a = serde_json::json!({"tenant": "t", "account": "a", "amount_minor": 5});
        let b = serde_json::json!({"amount_minor": 5, "account": "a", "tenant": "t"});
        assert_eq!(
            event_id("PaymentApplied", &a),
            event_id("PaymentApplied", &b)
        );
        assert_ne!(event_id("PaymentApplied", &a), event_id("PromiseKept", &a));
        assert_eq!(event_id("X", &a).len(), 36);
    }

    #[test]
    fn webhook_urls_are_https_or_loopback() {
        let local = |u: &str| check_url(u, Targets::AlsoLoopback);
        assert!(local("https://crm.example.com/hooks/cobro?x=1").is_ok());
        assert!(local("http://127.0.0.1:8080/hook").is_ok());
        assert!(local("http://localhost/hook").is_ok());
        assert!(local("http://crm.example.com/hook").is_err());
        assert!(local("ftp://crm.example.com/hook").is_err());
        assert!(local("https://user:pw@crm.example.com/").is_err());
        assert!(local("crm.example.com").is_err());
        assert!(local("https:///nohost").is_err());
        assert!(local("https://a.example/#frag").is_err());
        // A deployment reaches only public addresses: not the Lambda Runtime API on loopback,
        // not the metadata endpoint, not a VPC.
        let public = |u: &str| check_url(u, Targets::Public);
        assert!(public("https://crm.example.com/hooks/cobro").is_ok());
        assert!(public("https://203.0.114.7/hook").is_ok());
        for u in [
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.5/hook",
            "https://172.16.3.4/hook",
            "https://192.168.1.1/hook",
            "https://100.64.0.1/hook",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "http://crm.example.com/hook",
        ] {
            assert!(public(u).is_err(), "{u}");
        }
    }

    #[test]
    fn the_schedule_ends() {
        assert_eq!(backoff(&SCHEDULE, 1), Some(Duration::from_secs(30)));
        assert_eq!(backoff(&SCHEDULE, 8), Some(Duration::from_secs(86_400)));
        assert_eq!(backoff(&SCHEDULE, 9), None);
        let total: u64 = SCHEDULE.iter().map(|d| d.as_secs()).sum();
        assert!(total > 40 * 3600 && total < 50 * 3600, "{total}");
    }
}
