//! The `Queue` contract: at-least-once delivery, visibility timeouts, redrive to a dead-letter
//! queue.

use std::time::Duration;

use cobro::ports::{Outgoing, Queue, QueueError};

fn msgs(n: usize, tag: &str) -> Vec<Outgoing> {
    (0..n)
        .map(|i| Outgoing::new(format!("m{i}"), format!("{tag}-{i}")))
        .collect()
}

async fn drain(q: &dyn Queue) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let got = q.receive(10, Duration::from_secs(30)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            q.delete(&m.receipt).await.unwrap();
            bodies.push(m.body);
        }
    }
    bodies.sort();
    bodies
}

/// `q` must redrive to `dlq` after `max_receives` receipts.
pub async fn run(q: &dyn Queue, dlq: &dyn Queue, max_receives: u32) {
    // Batches: 1 to 10 entries with distinct ids; receive takes 1 to 10.
    let invalid = |r: Result<_, QueueError>| matches!(r, Err(QueueError::Invalid(_)));
    assert!(
        invalid(q.send_batch(msgs(11, "x")).await),
        "batch: 11 entries are refused"
    );
    assert!(
        invalid(q.send_batch(vec![]).await),
        "batch: empty is refused"
    );
    let dup = vec![Outgoing::new("a", "1"), Outgoing::new("a", "2")];
    assert!(
        invalid(q.send_batch(dup).await),
        "batch: duplicate ids are refused"
    );
    assert!(
        invalid(q.receive(11, Duration::from_secs(1)).await.map(|_| ())),
        "receive: at most 10"
    );
    assert!(
        invalid(q.receive(0, Duration::from_secs(1)).await.map(|_| ())),
        "receive: at least 1"
    );
    assert!(
        q.receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "receive: an empty queue gives nothing, at once"
    );

    // Ten sent, at most `max` per receive (SQS may give fewer), each body once.
    q.send_batch(msgs(10, "b")).await.unwrap();
    let some = q.receive(3, Duration::from_secs(30)).await.unwrap();
    assert!(
        (1..=3).contains(&some.len()),
        "receive: respects max ({} of 3)",
        some.len()
    );
    assert!(
        some.iter().all(|m| m.receive_count == 1),
        "receive: first receipt counts 1"
    );
    let mut bodies = Vec::new();
    for m in some {
        q.delete(&m.receipt).await.unwrap();
        bodies.push(m.body);
    }
    bodies.extend(drain(q).await);
    bodies.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("b-{i}")).collect();
    want.sort();
    assert_eq!(
        bodies, want,
        "send_batch/receive/delete: every message once"
    );
    assert!(
        q.receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "delete: gone for good"
    );

    // Visibility: hidden while held, back after the timeout, counted.
    q.send_batch(msgs(1, "v")).await.unwrap();
    let first = q.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1, "visibility: received");
    assert_eq!(first[0].receive_count, 1, "visibility: first receipt");
    assert!(
        q.receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "visibility: hidden while held"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = q.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second.len(), 1, "visibility: back after the timeout");
    assert_eq!(second[0].body, "v-0");
    assert_eq!(second[0].receive_count, 2, "visibility: receive count");
    q.delete(&second[0].receipt).await.unwrap();
    q.delete(&second[0].receipt)
        .await
        .expect("delete: twice is not an error");
    q.delete(&first[0].receipt)
        .await
        .expect("delete: an older receipt of a deleted message is not an error");

    // Delay: hidden until the delay has passed, then delivered like any other.
    assert_eq!(
        Outgoing::new("d", "x")
            .delayed(Duration::from_secs(901))
            .delay,
        Duration::from_secs(900),
        "delay: the constructor clamps to SQS's most"
    );
    let mut too_long = Outgoing::new("d", "x");
    too_long.delay = Duration::from_secs(901);
    assert!(
        invalid(q.send_batch(vec![too_long]).await),
        "delay: more than 900 s is refused"
    );
    q.send_batch(vec![
        Outgoing::new("late", "late-0").delayed(Duration::from_secs(2)),
        Outgoing::new("now", "now-0"),
    ])
    .await
    .unwrap();
    let early = drain(q).await;
    assert_eq!(early, ["now-0"], "delay: only the undelayed one at first");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        drain(q).await,
        ["late-0"],
        "delay: the delayed one after its delay"
    );

    // Redrive: received max_receives times without a delete, then it moves to the DLQ.
    q.send_batch(msgs(1, "poison")).await.unwrap();
    for i in 0..max_receives {
        let got = q.receive(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 1, "redrive: receipt {} of {max_receives}", i + 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let mut moved = Vec::new();
    for _ in 0..5 {
        assert!(
            q.receive(1, Duration::from_secs(1))
                .await
                .unwrap()
                .is_empty(),
            "redrive: not received again"
        );
        moved = drain(dlq).await;
        if !moved.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(moved, ["poison-0"], "redrive: in the dead-letter queue");
}
