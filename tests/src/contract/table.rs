//! The `Table` contract.

use serde_json::{json, Value};

use cobro::ports::table::{
    Condition, Item, Key, Query, SkRange, Table, TableError, Update, WriteOp, DUE_INDEX, GSI1,
};

fn item(pk: &str, sk: &str, extra: Value) -> Item {
    let mut i = Key::new(pk, sk).into_item();
    if let Value::Object(m) = extra {
        i.extend(m);
    }
    i
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["sk"].as_str().unwrap().to_string())
        .collect()
}

/// Runs each case in turn, printing its name first: the test harness shows a failed test's
/// output, so the last name printed is the case that failed even when the panic is an
/// `unwrap` rather than an assertion (which name their case themselves).
macro_rules! cases {
    ($t:expr; $($case:ident),+ $(,)?) => {
        $(
            println!("table contract: {}", stringify!($case));
            $case($t).await;
        )+
    };
}

/// Every case, each on its own partition keys, so one table serves them all.
pub async fn run(t: &dyn Table) {
    cases!(t;
        round_trip,
        attribute_names,
        conditional_put,
        updates,
        deletes,
        query_ranges,
        query_paging,
        indexes_are_sparse,
        transactions,
        batch_write,
        batch_write_repeated_keys,
        utf8_byte_order,
        refuses_what_dynamodb_refuses,
    );
}

async fn round_trip(t: &dyn Table) {
    let key = Key::new("rt", "1");
    assert_eq!(t.get(&key).await.unwrap(), None, "round_trip: absent item");
    let it = item(
        "rt",
        "1",
        json!({
            "s": "ñandú 🦤", "empty": "", "n": -42, "zero": 0, "big": i64::MAX, "small": i64::MIN,
            "f": 1.5, "negf": -0.25, "b": true, "f_": false, "nul": null,
            "l": [1, "two", false, [3], null, { "k": "v" }], "el": [], "em": {},
            "m": { "a": { "b": [ { "c": 1 } ] }, "x": "y", "n": -7 }
        }),
    );
    t.put(it.clone(), None).await.unwrap();
    assert_eq!(
        t.get(&key).await.unwrap(),
        Some(it),
        "round_trip: every value type"
    );
}

/// Attribute names that would break an expression if spliced into it (DynamoDB reads `a.b` as a
/// path, `#x` and `:v0` as placeholders, and `size` as a function); they are plain names here.
async fn attribute_names(t: &dyn Table) {
    let key = Key::new("names", "1");
    let odd = ["a.b", "#n0", ":v0", "with space", "size", "ñ"];
    let updates = odd.iter().map(|n| Update::set(n, *n)).collect();
    let it = t.update(&key, updates, None).await.unwrap();
    for n in odd {
        assert_eq!(it[n], n, "attribute_names: set `{n}`");
    }
    let all_hold = Condition::And(odd.iter().map(|n| Condition::eq(n, *n)).collect());
    let it = t
        .update(&key, vec![Update::add("#n0 count", 1)], Some(all_hold))
        .await
        .unwrap();
    assert_eq!(it["#n0 count"], 1, "attribute_names: conditions on them");
    let r = t
        .update(
            &key,
            vec![Update::remove("a.b")],
            Some(Condition::eq("a.b", "nope")),
        )
        .await;
    assert_eq!(
        r,
        Err(TableError::ConditionFailed),
        "attribute_names: Eq fails"
    );
    let it = t
        .update(&key, vec![Update::remove("a.b")], None)
        .await
        .unwrap();
    assert!(!it.contains_key("a.b"), "attribute_names: remove");
}

async fn conditional_put(t: &dyn Table) {
    let it = item("cp", "1", json!({ "v": 1 }));
    t.put(it.clone(), Some(Condition::NotExists)).await.unwrap();
    let again = t
        .put(
            item("cp", "1", json!({ "v": 2 })),
            Some(Condition::NotExists),
        )
        .await;
    assert_eq!(
        again,
        Err(TableError::ConditionFailed),
        "conditional_put: NotExists twice"
    );
    assert_eq!(
        t.get(&Key::new("cp", "1")).await.unwrap(),
        Some(it),
        "conditional_put: unchanged"
    );
    t.put(
        item("cp", "1", json!({ "v": 3 })),
        Some(Condition::eq("v", 1)),
    )
    .await
    .unwrap();
    let r = t
        .put(item("cp", "2", json!({})), Some(Condition::Exists))
        .await;
    assert_eq!(
        r,
        Err(TableError::ConditionFailed),
        "conditional_put: Exists on absent"
    );
    let r = t
        .put(
            Key::new("x", "y")
                .into_item()
                .into_iter()
                .filter(|(k, _)| k == "pk")
                .collect(),
            None,
        )
        .await;
    assert!(
        matches!(r, Err(TableError::Invalid(_))),
        "conditional_put: item without sk: {r:?}"
    );
}

async fn updates(t: &dyn Table) {
    let key = Key::new("up", "1");
    let created = t
        .update(
            &key,
            vec![Update::add("count", 5), Update::set("s", "a")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(created["count"], 5, "updates: Add on absent creates");
    assert_eq!(created["pk"], "up");
    let after = t
        .update(
            &key,
            vec![
                Update::add("count", -2),
                Update::remove("s"),
                Update::set("m", json!({"k": [1]})),
            ],
            Some(Condition::eq("count", 5)),
        )
        .await
        .unwrap();
    assert_eq!(after["count"], 3);
    assert!(!after.contains_key("s"), "updates: Remove");
    assert_eq!(after["m"], json!({"k": [1]}));
    let stale = t
        .update(
            &key,
            vec![Update::set("x", 1)],
            Some(Condition::eq("count", 5)),
        )
        .await;
    assert_eq!(stale, Err(TableError::ConditionFailed), "updates: stale Eq");
    let cases = [
        (Condition::lt("count", 4), true),
        (Condition::lt("count", 3), false),
        (Condition::le("count", 3), true),
        (Condition::gt("count", 2), true),
        (Condition::ge("count", 4), false),
        (Condition::ge("count", 3), true),
        (Condition::gt("count", -1_000_000_000_000_i64), true),
        (Condition::eq("m", json!({"k": [1]})), true),
        (Condition::Ne("missing".into(), json!(1)), true),
        (Condition::Ne("count".into(), json!(3)), false),
        (Condition::AttrExists("m".into()), true),
        (Condition::AttrNotExists("m".into()), false),
        (
            Condition::Or(vec![
                Condition::eq("count", 9),
                Condition::AttrNotExists("nope".into()),
            ]),
            true,
        ),
        (
            Condition::And(vec![
                Condition::eq("count", 3),
                Condition::AttrExists("nope".into()),
            ]),
            false,
        ),
        (Condition::lt("count", "a string"), false),
    ];
    for (i, (c, holds)) in cases.into_iter().enumerate() {
        let r = t
            .update(&key, vec![Update::set("probe", i as i64)], Some(c.clone()))
            .await;
        assert_eq!(
            r.is_ok(),
            holds,
            "updates: condition {c:?} should hold={holds}: {r:?}"
        );
    }
    let r = t.update(&key, vec![Update::set("pk", "other")], None).await;
    assert!(
        matches!(r, Err(TableError::Invalid(_))),
        "updates: key attributes are immutable: {r:?}"
    );
    for bad in [Update::set("gsi1pk", 5), Update::add("duesk", 1)] {
        let r = t.update(&key, vec![bad.clone()], None).await;
        assert!(
            matches!(r, Err(TableError::Invalid(_))),
            "updates: index key attributes stay strings ({bad:?}): {r:?}"
        );
    }
    let r = t.update(&key, vec![Update::add("m", 1)], None).await;
    assert!(
        matches!(r, Err(TableError::Invalid(_))),
        "updates: Add on a map: {r:?}"
    );
    let it = t.get(&key).await.unwrap().unwrap();
    assert!(
        !it.contains_key("gsi1pk") && !it.contains_key("duesk") && it["m"] == json!({"k": [1]}),
        "updates: refused updates change nothing: {it:?}"
    );
    let fresh = t
        .update(
            &Key::new("up", "2"),
            vec![Update::set("s", "x")],
            Some(Condition::NotExists),
        )
        .await
        .unwrap();
    assert_eq!(
        fresh,
        item("up", "2", json!({ "s": "x" })),
        "updates: conditional create returns the new item"
    );
}

async fn deletes(t: &dyn Table) {
    let it = item("del", "1", json!({ "v": 1 }));
    t.put(it.clone(), None).await.unwrap();
    let r = t
        .delete(&Key::new("del", "1"), Some(Condition::eq("v", 2)))
        .await;
    assert_eq!(
        r,
        Err(TableError::ConditionFailed),
        "deletes: failing condition"
    );
    assert_eq!(
        t.get(&Key::new("del", "1")).await.unwrap(),
        Some(it.clone()),
        "deletes: nothing changed"
    );
    let old = t
        .delete(&Key::new("del", "1"), Some(Condition::Exists))
        .await
        .unwrap();
    assert_eq!(old, Some(it), "deletes: returns the old item");
    assert_eq!(
        t.delete(&Key::new("del", "1"), None).await.unwrap(),
        None,
        "deletes: absent"
    );
}

async fn query_ranges(t: &dyn Table) {
    for sk in ["a#1", "a#2", "a#3", "b#1", "c"] {
        t.put(item("qr", sk, json!({})), None).await.unwrap();
    }
    t.put(item("qr-other", "a#1", json!({})), None)
        .await
        .unwrap();
    let q = |sk: SkRange| Query::table("qr", sk);
    let cases = [
        (SkRange::All, vec!["a#1", "a#2", "a#3", "b#1", "c"]),
        (SkRange::Eq("a#2".into()), vec!["a#2"]),
        (SkRange::Lt("a#3".into()), vec!["a#1", "a#2"]),
        (SkRange::Le("a#3".into()), vec!["a#1", "a#2", "a#3"]),
        (SkRange::Gt("a#3".into()), vec!["b#1", "c"]),
        (SkRange::Ge("b#1".into()), vec!["b#1", "c"]),
        (
            SkRange::Between("a#2".into(), "b#1".into()),
            vec!["a#2", "a#3", "b#1"],
        ),
        (SkRange::BeginsWith("a#".into()), vec!["a#1", "a#2", "a#3"]),
    ];
    for (range, want) in cases {
        let got = t.query(q(range.clone())).await.unwrap();
        assert_eq!(sks(&got.items), want, "query_ranges: {range:?}");
    }
    let back = t
        .query(q(SkRange::BeginsWith("a#".into())).backward())
        .await
        .unwrap();
    assert_eq!(
        sks(&back.items),
        ["a#3", "a#2", "a#1"],
        "query_ranges: backward"
    );
    let none = t
        .query(Query::table("qr-empty", SkRange::All))
        .await
        .unwrap();
    assert!(
        none.items.is_empty() && none.next.is_none(),
        "query_ranges: empty partition"
    );
}

async fn query_paging(t: &dyn Table) {
    let all: Vec<String> = (0..23).map(|i| format!("{i:03}")).collect();
    for sk in &all {
        t.put(item("pg", sk, json!({ "i": sk })), None)
            .await
            .unwrap();
    }
    for forward in [true, false] {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..20 {
            let mut q = Query::table("pg", SkRange::All)
                .limit(5)
                .after(cursor.take());
            q.forward = forward;
            let page = t.query(q).await.unwrap();
            assert!(
                page.items.len() <= 5,
                "query_paging: a page never exceeds the limit"
            );
            seen.extend(sks(&page.items));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut want = all.clone();
        if !forward {
            want.reverse();
        }
        assert_eq!(
            seen, want,
            "query_paging: every item once, in order (forward={forward})"
        );
    }
    let bad = t
        .query(Query::table("pg", SkRange::All).after(Some("not a cursor".into())))
        .await;
    assert!(bad.is_err(), "query_paging: a malformed cursor is rejected");
}

async fn indexes_are_sparse(t: &dyn Table) {
    t.put(
        item("ix", "1", json!({ "gsi1pk": "G", "gsi1sk": "b" })),
        None,
    )
    .await
    .unwrap();
    t.put(
        item("ix", "2", json!({ "gsi1pk": "G", "gsi1sk": "a" })),
        None,
    )
    .await
    .unwrap();
    t.put(item("ix", "3", json!({ "gsi1pk": "G" })), None)
        .await
        .unwrap();
    t.put(
        item("ix", "4", json!({ "duepk": "D", "duesk": "0005" })),
        None,
    )
    .await
    .unwrap();
    t.put(
        item("ix", "5", json!({ "duepk": "D", "duesk": "0009" })),
        None,
    )
    .await
    .unwrap();
    let g = t
        .query(Query::index(GSI1, "G", SkRange::All))
        .await
        .unwrap();
    assert_eq!(
        sks(&g.items),
        ["2", "1"],
        "indexes: ordered by index sort key; half-keyed items left out"
    );
    let due = t
        .query(Query::index(DUE_INDEX, "D", SkRange::Le("0007".into())))
        .await
        .unwrap();
    assert_eq!(sks(&due.items), ["4"], "indexes: range on the due index");
    t.update(
        &Key::new("ix", "4"),
        vec![Update::remove("duepk"), Update::remove("duesk")],
        None,
    )
    .await
    .unwrap();
    let due = t
        .query(Query::index(DUE_INDEX, "D", SkRange::All))
        .await
        .unwrap();
    assert_eq!(
        sks(&due.items),
        ["5"],
        "indexes: removing the key attributes takes an item out"
    );
    t.update(
        &Key::new("ix", "5"),
        vec![Update::set("duesk", "0001")],
        None,
    )
    .await
    .unwrap();
    let due = t
        .query(Query::index(DUE_INDEX, "D", SkRange::Le("0002".into())))
        .await
        .unwrap();
    assert_eq!(
        sks(&due.items),
        ["5"],
        "indexes: moving an item's index sort key"
    );
    let paged = t
        .query(Query::index(GSI1, "G", SkRange::All).limit(1))
        .await
        .unwrap();
    let rest = t
        .query(
            Query::index(GSI1, "G", SkRange::All)
                .limit(1)
                .after(paged.next),
        )
        .await
        .unwrap();
    assert_eq!(
        (sks(&paged.items), sks(&rest.items)),
        (vec!["2".into()], vec!["1".into()]),
        "indexes: paging"
    );
    let r = t
        .put(item("ix", "6", json!({ "gsi1pk": 5, "gsi1sk": "a" })), None)
        .await;
    assert!(
        matches!(r, Err(TableError::Invalid(_))),
        "indexes: index keys are strings: {r:?}"
    );
}

async fn transactions(t: &dyn Table) {
    t.put(
        item("tx", "acct", json!({ "balance": 100, "version": 1 })),
        None,
    )
    .await
    .unwrap();
    let pay = |id: &str, version: i64| {
        vec![
            WriteOp::Put {
                item: item("tx", id, json!({ "amount": 30 })),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Update {
                key: Key::new("tx", "acct"),
                updates: vec![Update::add("balance", -30), Update::add("version", 1)],
                condition: Some(Condition::eq("version", version)),
            },
        ]
    };
    t.transact_write(pay("p1", 1)).await.unwrap();
    let again = t.transact_write(pay("p1", 2)).await;
    assert_eq!(
        again,
        Err(TableError::TransactionCanceled(vec![true, false])),
        "transactions: duplicate put"
    );
    let stale = t.transact_write(pay("p2", 1)).await;
    assert_eq!(
        stale,
        Err(TableError::TransactionCanceled(vec![false, true])),
        "transactions: stale version"
    );
    assert_eq!(
        t.get(&Key::new("tx", "p2")).await.unwrap(),
        None,
        "transactions: nothing of a cancelled one"
    );
    let acct = t.get(&Key::new("tx", "acct")).await.unwrap().unwrap();
    assert_eq!(
        (acct["balance"].clone(), acct["version"].clone()),
        (json!(70), json!(2)),
        "transactions: applied once"
    );
    let checked = t
        .transact_write(vec![
            WriteOp::Check {
                key: Key::new("tx", "acct"),
                condition: Condition::eq("version", 7),
            },
            WriteOp::Delete {
                key: Key::new("tx", "p1"),
                condition: None,
            },
        ])
        .await;
    assert_eq!(
        checked,
        Err(TableError::TransactionCanceled(vec![true, false])),
        "transactions: failing check"
    );
    assert!(
        t.get(&Key::new("tx", "p1")).await.unwrap().is_some(),
        "transactions: delete not applied"
    );
    t.transact_write(vec![
        WriteOp::Check {
            key: Key::new("tx", "acct"),
            condition: Condition::eq("version", 2),
        },
        WriteOp::Delete {
            key: Key::new("tx", "p1"),
            condition: Some(Condition::Exists),
        },
    ])
    .await
    .unwrap();
    assert_eq!(
        t.get(&Key::new("tx", "p1")).await.unwrap(),
        None,
        "transactions: delete applied"
    );
    let twice = t
        .transact_write(vec![
            WriteOp::Delete {
                key: Key::new("tx", "x"),
                condition: None,
            },
            WriteOp::Delete {
                key: Key::new("tx", "x"),
                condition: None,
            },
        ])
        .await;
    assert!(
        matches!(twice, Err(TableError::Invalid(_))),
        "transactions: two ops on one item: {twice:?}"
    );
    assert!(
        matches!(t.transact_write(vec![]).await, Err(TableError::Invalid(_))),
        "transactions: empty"
    );
}

async fn batch_write(t: &dyn Table) {
    let items: Vec<Item> = (0..60)
        .map(|i| item("bw", &format!("{i:02}"), json!({ "i": i })))
        .collect();
    t.batch_write(items, vec![]).await.unwrap();
    let all = t.query(Query::table("bw", SkRange::All)).await.unwrap();
    assert_eq!(all.items.len(), 60, "batch_write: 60 items in chunks of 25");
    let deletes: Vec<Key> = (0..30).map(|i| Key::new("bw", format!("{i:02}"))).collect();
    t.batch_write(vec![], deletes).await.unwrap();
    let rest = t.query(Query::table("bw", SkRange::All)).await.unwrap();
    assert_eq!(rest.items.len(), 30, "batch_write: deletes");
}

async fn batch_write_repeated_keys(t: &dyn Table) {
    // One key twice among the puts: the last one wins. Put and delete of one key: deleted
    // (the puts apply before the deletes). All within one chunk of 25.
    let puts = vec![
        item("bwr", "a", json!({ "v": 1 })),
        item("bwr", "b", json!({ "v": 1 })),
        item("bwr", "a", json!({ "v": 2 })),
        item("bwr", "c", json!({ "v": 1 })),
    ];
    t.batch_write(puts, vec![Key::new("bwr", "c"), Key::new("bwr", "c")])
        .await
        .unwrap();
    let got = t.query(Query::table("bwr", SkRange::All)).await.unwrap();
    assert_eq!(
        got.items,
        [
            item("bwr", "a", json!({ "v": 2 })),
            item("bwr", "b", json!({ "v": 1 }))
        ],
        "batch_write_repeated_keys"
    );
}

/// Sort keys order by UTF-8 bytes, as DynamoDB compares binary. The last two differ from
/// UTF-16 order (U+FF61 sorts after an astral character's surrogates there), which a store
/// comparing JavaScript or Java strings gets wrong.
async fn utf8_byte_order(t: &dyn Table) {
    for sk in ["😀", "é", "a", "\u{FF61}", "Z", "~", "0"] {
        t.put(item("utf8", sk, json!({})), None).await.unwrap();
    }
    let got = t.query(Query::table("utf8", SkRange::All)).await.unwrap();
    assert_eq!(
        sks(&got.items),
        ["0", "Z", "a", "~", "é", "\u{FF61}", "😀"],
        "utf8_byte_order"
    );
    let range = t
        .query(Query::table(
            "utf8",
            SkRange::Between("a".into(), "\u{FF61}".into()),
        ))
        .await
        .unwrap();
    assert_eq!(
        sks(&range.items),
        ["a", "~", "é", "\u{FF61}"],
        "utf8_byte_order: ranges compare bytes too"
    );
}

/// Requests DynamoDB refuses are refused by every adapter, so nothing works locally that would
/// fail on AWS.
pub async fn refuses_what_dynamodb_refuses(t: &dyn Table) {
    let invalid = |r: Result<(), TableError>, case: &str| {
        assert!(matches!(r, Err(TableError::Invalid(_))), "{case}: {r:?}");
    };
    invalid(t.put(item("", "x", json!({})), None).await, "empty pk");
    invalid(t.put(item("k", "", json!({})), None).await, "empty sk");
    invalid(
        t.put(item("k", "1", json!({ "gsi1pk": "", "gsi1sk": "a" })), None)
            .await,
        "empty index key",
    );
    let key = Key::new("k", "1");
    invalid(
        t.update(&key, vec![], None).await.map(|_| ()),
        "empty update",
    );
    invalid(
        t.update(&key, vec![Update::set("q", 1), Update::remove("q")], None)
            .await
            .map(|_| ()),
        "two changes to one attribute",
    );
    invalid(
        t.update(&key, vec![Update::set("duepk", "")], None)
            .await
            .map(|_| ()),
        "empty index key by update",
    );
    assert_eq!(
        t.get(&key).await.unwrap(),
        None,
        "refused requests change nothing"
    );
}
