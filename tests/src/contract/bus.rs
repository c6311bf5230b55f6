//! The `Bus` contract: rules route matching events, and only those, to their target queue in
//! EventBridge's envelope.

use serde_json::{json, Value};
use std::time::Duration;

use cobro::ports::{Bus, BusError, Event, Pattern, Queue};

/// The rule the bus under test must have: `pattern()` → `target`.
pub fn pattern() -> Pattern {
    Pattern {
        sources: vec!["cobro".into()],
        detail_types: vec!["PaymentConfirmed".into()],
    }
}

/// Publishes through `bus` and observes through `target`, the queue its rule delivers to.
pub async fn run(bus: &dyn Bus, target: &dyn Queue) {
    println!("bus contract: routing");
    let events: Vec<Event> = (0..12)
        .map(|i| {
            let kind = if i % 3 == 0 {
                "PaymentConfirmed"
            } else {
                "SomethingElse"
            };
            Event::new(
                kind,
                json!({ "n": i, "nested": { "amount_minor": 1000 + i, "note": "ñ" } }),
            )
        })
        .collect();
    bus.publish(events).await.unwrap();
    let mut got: Vec<Value> = Vec::new();
    for _ in 0..30 {
        for m in target.receive(10, Duration::from_secs(30)).await.unwrap() {
            target.delete(&m.receipt).await.unwrap();
            got.push(serde_json::from_str(&m.body).expect("envelope is JSON"));
        }
        if got.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Delivery is asynchronous on AWS: give strays a moment to show up before saying none did.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for m in target.receive(10, Duration::from_secs(30)).await.unwrap() {
        got.push(serde_json::from_str(&m.body).expect("envelope is JSON"));
    }
    got.sort_by_key(|e| e["detail"]["n"].as_i64());
    let ns: Vec<i64> = got
        .iter()
        .map(|e| e["detail"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ns,
        [0, 3, 6, 9],
        "bus: only matching events arrive, each once"
    );
    for e in &got {
        assert_eq!(
            e["detail-type"], "PaymentConfirmed",
            "bus: envelope detail-type"
        );
        assert_eq!(e["source"], "cobro", "bus: envelope source");
        assert_eq!(e["version"], "0", "bus: envelope version");
        // moto leaves `account` out of the envelope (AWS puts the account id there); consumers
        // must not need it, so it is only checked when present.
        assert!(
            e["id"].is_string()
                && e["time"].is_string()
                && e["region"].is_string()
                && (e["account"].is_null() || e["account"].is_string()),
            "bus: envelope id, time, region, account: {e}"
        );
        assert_eq!(e["resources"], json!([]), "bus: envelope resources");
    }
    assert_eq!(
        got[1]["detail"]["nested"],
        json!({ "amount_minor": 1003, "note": "ñ" }),
        "bus: detail intact"
    );
    println!("bus contract: validation");
    for detail in [json!([1, 2]), json!("text"), json!(null)] {
        let bad = bus
            .publish(vec![
                Event::new("PaymentConfirmed", json!({ "n": 100 })),
                Event::new("PaymentConfirmed", detail.clone()),
            ])
            .await;
        assert!(
            matches!(bad, Err(BusError::Invalid(_))),
            "bus: a detail that is not an object ({detail}) is refused: {bad:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        target
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "bus: a refused batch publishes none of its events"
    );
    bus.publish(vec![])
        .await
        .expect("bus: publishing nothing is fine");
}
