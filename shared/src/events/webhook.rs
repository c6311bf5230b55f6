//! A tenant's webhook: what is posted to it, how it is signed, and when a failed delivery is
//! tried again. No I/O here; the `events-out` function does the posting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::{Host, Url};

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
/// multicast, benchmarking or documentation. An IPv6 address that carries an IPv4 one (mapped,
/// compatible, NAT64, 6to4: `embedded_ipv4`) is judged as that IPv4 address, since that is
/// what a connection to it may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_multicast()
                // Unique local, link-local, the deprecated site-local.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                // Documentation (2001:db8::/32, 3fff::/20).
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x3fff && s[1] < 0x1000)
                // Teredo: its IPv4 addresses are a relay's and an obfuscated client's.
                || (s[0] == 0x2001 && s[1] == 0)
                // Local-use NAT64 (64:ff9b:1::/48): a private network's own translator.
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                // Discard-only.
                || s[..4] == [0x100, 0, 0, 0])
        }
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-compatible (`::/96`, which holds `::` and
/// `::1` too), IPv4-mapped (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`, the address in its next 32 bits).
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let [.., a, b, c, d] = v6.octets();
    let low = Ipv4Addr::new(a, b, c, d);
    match v6.segments() {
        [0, 0, 0, 0, 0, 0, ..]
        | [0, 0, 0, 0, 0, 0xffff, ..]
        | [0, 0, 0, 0, 0xffff, 0, ..]
        | [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// Checks a webhook URL and gives it back as it will be posted to: parsed the WHATWG way, as
/// the HTTP client parses it, so the host checked is the host connected to. An address in any
/// of the forms such parsers take (`2130706433`, `0x7f.1`, `127.0.0.1.`, percent-encoded,
/// `[::ffff:7f00:1]`) is checked as the address it is. The caller stores or posts the URL this
/// returns, never the raw text.
///
/// It must be `https://` (to a public host for `Targets::Public`), or, for
/// `Targets::AlsoLoopback`, `http://` to a loopback host (a receiver on the same machine, as in
/// the local stack). No credentials, no fragment, no backslash. A host name is checked again
/// when it is resolved (`PublicResolver`).
pub fn check_url(raw: &str, targets: Targets) -> Result<Url, String> {
    if raw.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    // The WHATWG parser drops tabs and newlines inside and trims the ends: what was checked
    // would not be what was written.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("is not a valid URL".into());
    }
    // A backslash is a slash to the WHATWG parser and not to others: `https://a.example\@10.0.0.1`
    // names a different host to each.
    if raw.contains('\\') {
        return Err("must not contain a backslash".into());
    }
    // `scheme://host…` as written: the parser would also take `https:host` or `https:///host`.
    let (scheme, rest) = raw
        .split_once("://")
        .filter(|(scheme, rest)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic()) && !rest.starts_with('/')
        })
        .ok_or_else(|| "must be an absolute https:// URL".to_string())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err("must be an https:// URL".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let (loopback, public) = match url.host() {
        Some(Host::Domain(name)) => {
            // `localhost.` is `localhost`; RFC 6761 keeps all of `.localhost` on loopback.
            let name = name.trim_end_matches('.');
            if name.is_empty() {
                return Err("is not a valid URL".into());
            }
            let loopback = name == "localhost" || name.ends_with(".localhost");
            (loopback, !loopback)
        }
        Some(Host::Ipv4(ip)) => (ip.is_loopback(), is_public(IpAddr::V4(ip))),
        Some(Host::Ipv6(ip)) => (
            ip.is_loopback() || embedded_ipv4(ip).is_some_and(|v4| v4.is_loopback()),
            is_public(IpAddr::V6(ip)),
        ),
        None => return Err("is not a valid URL".into()),
    };
    if targets == Targets::Public && !public {
        return Err("must point at a public address (not loopback, private or link-local)".into());
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback && targets == Targets::AlsoLoopback => Ok(url),
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

    /// The forms an address takes to slip past a check that reads the URL as text: each is
    /// the address the HTTP client would connect to, and a deployment refuses it.
    #[test]
    fn an_address_in_any_form_is_checked_as_the_address_it_is() {
        for u in [
            // IPv4 as one number, in hex, octal, short forms, with a trailing dot.
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://127.0.1/",
            "https://127.0.0.1./",
            "https://0/",
            "https://0x0a.0.0.5/",
            "https://167772165/",
            "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",
            "https://2852039166/latest/meta-data/",
            "https://169.254.43518/",
            // Percent-encoded.
            "https://%31%32%37.0.0.1/",
            "https://127.0.0.1%2e/",
            "https://%6c%6f%63%61%6c%68%6f%73%74/",
            // Names on loopback, upper case, a trailing dot.
            "https://LOCALHOST/",
            "https://localhost./",
            "https://api.localhost/",
            // A backslash: a slash to the client, not to a reader.
            "https://crm.example.com\\@127.0.0.1/",
            "https://127.0.0.1\\@crm.example.com/",
            // Credentials, even empty ones.
            "https://@127.0.0.1/",
            "https://crm.example.com@127.0.0.1/",
            // IPv4 in IPv6: compatible, mapped (dotted and hex), translated, NAT64, 6to4.
            "https://[::127.0.0.1]/",
            "https://[::7f00:1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[0:0:0:0:0:ffff:127.0.0.1]/",
            "https://[::ffff:0:7f00:1]/",
            "https://[64:ff9b::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:7f00:1::]/",
            "https://[::]/",
            "https://[0::1]/",
            "https://[fec0::1]/",
            // The parser would read a host here too.
            "https:///127.0.0.1/",
            "https:127.0.0.1/",
        ] {
            let refused = check_url(u, Targets::Public);
            assert!(refused.is_err(), "{u} → {refused:?}");
        }
        // Public hosts, however written, are taken, and given back normalised.
        for (u, posted) in [
            (
                "https://crm.example.com/hooks/cobro",
                "https://crm.example.com/hooks/cobro",
            ),
            ("HTTPS://CRM.Example.COM", "https://crm.example.com/"),
            (
                "https://crm.example.com:8443/h?x=1",
                "https://crm.example.com:8443/h?x=1",
            ),
            ("https://crm.example.com:443/h", "https://crm.example.com/h"),
            (
                "https://bücher.example/h",
                "https://xn--bcher-kva.example/h",
            ),
            ("https://203.0.114.7/hook", "https://203.0.114.7/hook"),
            ("https://0xcb.0.0x72.7/hook", "https://203.0.114.7/hook"),
            (
                "https://[2606:4700:4700::1111]/h",
                "https://[2606:4700:4700::1111]/h",
            ),
            (
                "https://[::ffff:203.0.114.7]/h",
                "https://[::ffff:cb00:7207]/h",
            ),
            (
                "https://[64:ff9b::203.0.114.7]/h",
                "https://[64:ff9b::cb00:7207]/h",
            ),
        ] {
            let got = check_url(u, Targets::Public).map(|u| u.to_string());
            assert_eq!(got.as_deref(), Ok(posted), "{u}");
        }
        // The local stack keeps its receivers on loopback, in any form too.
        for (u, posted) in [
            ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
            ("http://2130706433:8080/hook", "http://127.0.0.1:8080/hook"),
            ("http://127.1:8080/hook", "http://127.0.0.1:8080/hook"),
            ("http://[::1]:8080/hook", "http://[::1]:8080/hook"),
            (
                "http://[::ffff:127.0.0.1]:8080/hook",
                "http://[::ffff:7f00:1]:8080/hook",
            ),
            ("http://localhost./hook", "http://localhost./hook"),
        ] {
            let got = check_url(u, Targets::AlsoLoopback).map(|u| u.to_string());
            assert_eq!(got.as_deref(), Ok(posted), "{u}");
        }
        for u in [
            "http://10.0.0.5/hook",
            "http://0x0a.0.0.5/hook",
            "http://[::ffff:10.0.0.5]/hook",
            "http://crm.example.com\\@127.0.0.1/",
        ] {
            assert!(check_url(u, Targets::AlsoLoopback).is_err(), "{u}");
        }
    }

    #[test]
    fn an_ipv6_address_carrying_an_ipv4_one_is_judged_as_it() {
        let public = |s: &str| is_public(s.parse().unwrap());
        for ip in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:192.168.0.1",
            "64:ff9b::7f00:1",
            "2002:a00:1::1",
            "::",
            "::1",
            "64:ff9b:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "3fff::1",
            "100::1",
            "198.18.0.1",
            "198.19.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in [
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "8.8.8.8",
            "198.20.0.1",
        ] {
            assert!(public(ip), "{ip}");
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
