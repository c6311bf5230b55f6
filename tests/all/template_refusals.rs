//! The record of templates Meta refused (`Store::record_template_refusal`): its conditions on
//! the embedded store and on DynamoDB (moto), where a condition on an attribute the item lacks
//! is false.

use std::sync::Arc;

use cobro::adapters::sqlite::SqliteStore;
use cobro::domain::{Language, TenantId};
use cobro::ports::Table;
use cobro::repo::{Store, TemplateRefusal};
use cobro_tests::moto::{moto, unique};
use jiff::{SignedDuration, Timestamp};

fn refusal(t: &TenantId, refused_at: Timestamp, code: i64) -> TemplateRefusal {
    TemplateRefusal {
        tenant: t.clone(),
        template: "recordatorio#mora".into(),
        language: Language::Es,
        code,
        reason: "Template is paused".into(),
        tried_at: refused_at - SignedDuration::from_millis(300),
        refused_at,
        until: refused_at + SignedDuration::from_hours(1),
    }
}

async fn holds_until_it_ends_and_the_latest_wins(table: Arc<dyn Table>) {
    let store = Store::new(table);

    let t = TenantId::parse("t").unwrap();
    let u = TenantId::parse("u").unwrap();
    let now = Timestamp::from_second(1_700_000_000).unwrap();
    let at = |secs: i64| now + SignedDuration::from_secs(secs);
    let first = refusal(&t, now, 132015);
    assert!(store.record_template_refusal(&first).await.unwrap());
    assert!(
        !store.record_template_refusal(&first).await.unwrap(),
        "the same refusal twice changes nothing"
    );
    let name = "recordatorio#mora";
    assert_eq!(
        store
            .template_refusal(&t, name, Language::Es, at(60))
            .await
            .unwrap(),
        Some(first.clone())
    );
    // Per tenant and per language.
    for (tenant, lang) in [(&u, Language::Es), (&t, Language::Pt)] {
        assert_eq!(
            store
                .template_refusal(tenant, name, lang, at(60))
                .await
                .unwrap(),
            None
        );
    }
    // An older refusal (a slower sender) does not shorten a later one's hold.
    let later = refusal(&t, at(30), 132016);
    assert!(store.record_template_refusal(&later).await.unwrap());
    assert!(!store.record_template_refusal(&first).await.unwrap());
    let held = store
        .template_refusal(&t, name, Language::Es, at(3600))
        .await
        .unwrap()
        .expect("held until the later refusal's hold ends");
    assert_eq!(held.code, 132016);
    // Over once the hold ends, even if the item is still there.
    assert_eq!(
        store
            .template_refusal(&t, name, Language::Es, at(3630))
            .await
            .unwrap(),
        None
    );
}

async fn a_clear_turns_away_refusals_of_calls_made_before_it(table: Arc<dyn Table>) {
    let store = Store::new(table);

    let t = TenantId::parse("t").unwrap();
    let now = Timestamp::from_second(1_700_000_000).unwrap();
    let at = |secs: i64| now + SignedDuration::from_secs(secs);
    let name = "recordatorio#mora";
    assert!(store
        .record_template_refusal(&refusal(&t, now, 132001))
        .await
        .unwrap());
    let named = [(Language::Es, name.to_string())];
    store
        .clear_template_refusals(&t, &named, at(10))
        .await
        .unwrap();
    store
        .clear_template_refusals(&t, &named, at(10))
        .await
        .unwrap();
    assert_eq!(
        store
            .template_refusal(&t, name, Language::Es, at(11))
            .await
            .unwrap(),
        None
    );
    // A call made before the clear, refused after it: not recorded over the clear.
    let mut stale = refusal(&t, at(12), 132001);
    stale.tried_at = at(9);
    assert!(!store.record_template_refusal(&stale).await.unwrap());
    // A call made after it is.
    let fresh = refusal(&t, at(20), 132001);
    assert!(store.record_template_refusal(&fresh).await.unwrap());
    assert_eq!(
        store
            .template_refusal(&t, name, Language::Es, at(21))
            .await
            .unwrap(),
        Some(fresh)
    );
}

/// The list an operator reads (`GET /v1/templates`): the refusals holding now, of this tenant
/// only; not one cleared, not one whose hold ended.
async fn lists_what_holds_now(table: Arc<dyn Table>) {
    let store = Store::new(table);

    let t = TenantId::parse("t").unwrap();
    let u = TenantId::parse("u").unwrap();
    let now = Timestamp::from_second(1_700_000_000).unwrap();
    let at = |secs: i64| now + SignedDuration::from_secs(secs);
    let named = |name: &str, language, refused_at, tenant: &TenantId| TemplateRefusal {
        template: name.into(),
        language,
        ..refusal(tenant, refused_at, 132015)
    };
    let held = [
        named("recordatorio#mora", Language::Es, now, &t),
        named("recordatorio#mora", Language::Pt, at(5), &t),
    ];
    let ended = named("aviso", Language::En, at(-3600), &t);
    let cleared = named("acme", Language::Es, now, &t);
    let other_tenant = named("recordatorio#mora", Language::Es, now, &u);
    for r in held.iter().chain([&ended, &cleared, &other_tenant]) {
        assert!(store.record_template_refusal(r).await.unwrap());
    }
    store
        .clear_template_refusals(&t, &[(Language::Es, "acme".into())], at(1))
        .await
        .unwrap();

    let mut listed = store.held_template_refusals(&t, at(10)).await.unwrap();
    listed.sort_by_key(|r| r.language.as_str());
    assert_eq!(listed, held.to_vec());
    assert_eq!(
        store
            .held_template_refusals(&t, at(3602))
            .await
            .unwrap()
            .len(),
        1,
        "the first hold ended, the one refused 5 s later still holds"
    );
    assert_eq!(
        store.held_template_refusals(&u, at(10)).await.unwrap(),
        vec![other_tenant]
    );
}

#[tokio::test]
async fn the_refusals_holding_now_are_listed_per_tenant() {
    lists_what_holds_now(Arc::new(SqliteStore::open_in_memory().unwrap().table())).await;
    let Some(moto) = moto().await else { return };
    lists_what_holds_now(Arc::new(moto.create_table(&unique("refusal")).await)).await;
}

#[tokio::test]
async fn a_refusal_holds_its_template_until_it_ends_and_the_latest_wins() {
    holds_until_it_ends_and_the_latest_wins(Arc::new(
        SqliteStore::open_in_memory().unwrap().table(),
    ))
    .await;
    let Some(moto) = moto().await else { return };
    holds_until_it_ends_and_the_latest_wins(Arc::new(moto.create_table(&unique("refusal")).await))
        .await;
}

#[tokio::test]
async fn a_clear_frees_the_template_and_turns_away_refusals_of_calls_made_before_it() {
    a_clear_turns_away_refusals_of_calls_made_before_it(Arc::new(
        SqliteStore::open_in_memory().unwrap().table(),
    ))
    .await;
    let Some(moto) = moto().await else { return };
    a_clear_turns_away_refusals_of_calls_made_before_it(Arc::new(
        moto.create_table(&unique("refusal")).await,
    ))
    .await;
}
