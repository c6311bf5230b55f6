//! `cobro-admin` driven as an operator would, against a local stack's data directory (and the
//! AWS target on moto): each command's effect is checked through the stack itself.

use clap::Parser;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cobro::ports::{Outgoing, Queue, Secrets};
use cobro::whatsapp::signature;
use cobro_admin::{execute, run, Cli, Target};
use cobro_local::{demo, LocalStack, Settings};

async fn admin(dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["cobro-admin", "--local", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    run(cli).await.map_err(|e| e.to_string())
}

fn write(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

async fn stack(dir: &Path) -> Arc<LocalStack> {
    LocalStack::open(Settings::for_tests(dir.to_path_buf()))
        .await
        .unwrap()
}

/// A local stack in a temporary directory of its own: the directory (for the test's files),
/// the stack's data directory in it, and the stack.
async fn stack_in_a_temp_dir() -> (tempfile::TempDir, PathBuf, Arc<LocalStack>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = stack(&data).await;
    (dir, data, s)
}

/// `admin`, which must succeed and print JSON; the JSON.
async fn admin_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = admin(dir, args).await.unwrap();
    serde_json::from_str(&out).unwrap()
}

#[tokio::test]
async fn tenants_strategies_and_policies_are_validated_and_stored() {
    let (dir, data, s) = stack_in_a_temp_dir().await;
    let files = dir.path();

    let mut tenant =
        serde_json::to_value(s.store.tenant(&demo::tenant_id()).await.unwrap().unwrap()).unwrap();
    tenant["id"] = json!("acme");
    tenant["name"] = json!("Acme Cobranzas");
    let file = write(files, "acme.json", &tenant);
    assert_eq!(
        admin(&data, &["tenant", "create", &file]).await.unwrap(),
        "tenant `acme` stored"
    );
    let shown: serde_json::Value = admin_json(&data, &["tenant", "show", "acme"]).await;
    assert_eq!(shown["name"], "Acme Cobranzas");

    // A bad field is named, and nothing is stored.
    let mut bad = tenant.clone();
    bad["id"] = json!("bad");
    bad["country"] = json!(7);
    let file = write(files, "bad.json", &bad);
    let e = admin(&data, &["tenant", "create", &file])
        .await
        .unwrap_err();
    assert!(e.contains("country"), "{e}");
    assert!(admin(&data, &["tenant", "show", "bad"]).await.is_err());

    // YAML too, with the same field names in errors.
    let yaml = dir.path().join("beta.yaml");
    std::fs::write(
        &yaml,
        "id: beta\nname: Beta\ncountry: CL\nchannels: [sms]\n",
    )
    .unwrap();
    let out = admin(&data, &["tenant", "create", yaml.to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(out, "tenant `beta` stored");
    std::fs::write(
        &yaml,
        "id: beta\nname: Beta\ncountry: CL\nchannels: [fax]\n",
    )
    .unwrap();
    let e = admin(&data, &["tenant", "create", yaml.to_str().unwrap()])
        .await
        .unwrap_err();
    assert!(e.contains("channels[0]"), "{e}");

    let book = json!({ "strategies": [], "default": "gentle" });
    let file = write(files, "book.json", &book);
    let e = admin(&data, &["strategy", "validate", &file])
        .await
        .unwrap_err();
    assert!(e.contains("default") || e.contains("strategies"), "{e}");
    let e = admin(&data, &["strategy", "load", "--tenant", "acme", &file])
        .await
        .unwrap_err();
    assert!(e.contains("strategies."), "the store names the field: {e}");
    // A valid book is stored, and the templates it names are no longer held back by a
    // refusal Meta made before (they may have been fixed at Meta).
    let acme = cobro::domain::TenantId::parse("acme").unwrap();
    let now = jiff::Timestamp::now();
    let refusal = cobro::repo::TemplateRefusal {
        tenant: acme.clone(),
        template: "acme_mora".into(),
        language: cobro::domain::Language::Es,
        code: 132015,
        reason: "Template is paused".into(),
        tried_at: now,
        refused_at: now,
        until: now + jiff::SignedDuration::from_hours(1),
    };
    assert!(s.store.record_template_refusal(&refusal).await.unwrap());
    let book = json!({
        "strategies": [{ "id": "gentle", "steps": [
            { "day": 5, "templates": { "es": "acme_mora" } }
        ]}],
        "default": "gentle"
    });
    let file = write(files, "good-book.json", &book);
    assert_eq!(
        admin(&data, &["strategy", "load", "--tenant", "acme", &file])
            .await
            .unwrap(),
        "strategy book loaded for tenant `acme`"
    );
    let held = s
        .store
        .template_refusal(&acme, "acme_mora", cobro::domain::Language::Es, now)
        .await
        .unwrap();
    assert_eq!(held, None);

    // The country's preset is a valid policy; loosening it is refused, naming the rule.
    let preset = serde_json::to_value(cobro::compliance::preset("CL").unwrap()).unwrap();
    let file = write(files, "policy.json", &preset);
    assert!(
        admin(&data, &["policy", "validate", "--country", "CL", &file])
            .await
            .is_ok()
    );
    admin(&data, &["policy", "load", "--tenant", "acme", &file])
        .await
        .unwrap();
    let stored = s
        .store
        .tenant(&cobro::domain::TenantId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.policy.is_some());
    let e = admin(&data, &["policy", "load", "--tenant", "nobody", &file])
        .await
        .unwrap_err();
    assert!(e.contains("no tenant"), "{e}");
}

#[tokio::test]
async fn api_keys_are_issued_once_listed_without_secrets_and_revoked() {
    let (_dir, data, s) = stack_in_a_temp_dir().await;
    let out = admin(
        &data,
        &[
            "key",
            "issue",
            "--tenant",
            "demo",
            "--name",
            "crm",
            "--scope",
            "accounts:read,payments:write",
        ],
    )
    .await
    .unwrap();
    let issued: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        issued["id"].as_str().unwrap(),
        issued["secret"].as_str().unwrap(),
    );
    let record = s
        .store
        .api_key(secret)
        .await
        .unwrap()
        .expect("the secret works");
    assert_eq!(
        record.scopes,
        vec![
            cobro::repo::Scope::AccountsRead,
            cobro::repo::Scope::PaymentsWrite
        ]
    );

    let listed = admin(&data, &["key", "list", "--tenant", "demo"])
        .await
        .unwrap();
    assert!(listed.contains(id), "{listed}");
    assert!(!listed.contains(secret), "a listing never shows a secret");

    let out = admin(&data, &["key", "revoke", "--tenant", "demo", id])
        .await
        .unwrap();
    assert!(out.contains("revoked"), "{out}");
    assert!(s.store.api_key(secret).await.unwrap().unwrap().is_revoked());
    assert!(
        admin(&data, &["key", "revoke", "--tenant", "demo", id])
            .await
            .is_ok(),
        "twice is fine"
    );
    assert!(admin(&data, &["key", "revoke", "--tenant", "demo", "nope"])
        .await
        .is_err());
    let e = admin(
        &data,
        &[
            "key", "issue", "--tenant", "demo", "--name", "x", "--scope", "root",
        ],
    )
    .await
    .unwrap_err();
    assert!(e.contains("unknown scope"), "{e}");
    let e = admin(
        &data,
        &[
            "key", "issue", "--tenant", "ghost", "--name", "x", "--scope", "admin",
        ],
    )
    .await
    .unwrap_err();
    assert!(e.contains("no tenant"), "{e}");
}

#[tokio::test]
async fn a_registered_number_is_verified_with_the_secret_the_cli_stored() {
    let (dir, data, s) = stack_in_a_temp_dir().await;
    let secrets = write(
        dir.path(),
        "secrets.json",
        &json!({
            "access_token": "EAAG-test", "app_secret": "registered-secret", "verify_token": "v"
        }),
    );
    let out = admin(
        &data,
        &[
            "whatsapp",
            "register",
            "--tenant",
            "demo",
            "--phone-number-id",
            "1122334455667",
            "--display-phone-number",
            "972123456789",
            "--secrets",
            &secrets,
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("whatsapp/1122334455667"), "{out}");
    // The route holds no secret; the secrets store does, under the agreed name.
    let route = s
        .store
        .whatsapp_number("1122334455667")
        .await
        .unwrap()
        .unwrap();
    assert!(!serde_json::to_string(&route)
        .unwrap()
        .contains("registered-secret"));
    assert_eq!(
        s.secrets
            .get("whatsapp/1122334455667")
            .await
            .unwrap()
            .unwrap()["app_secret"],
        "registered-secret"
    );

    let raw = std::fs::read(format!(
        "{}/../../shared/fixtures/whatsapp-webhooks/text_reply_with_context.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let headers = |secret: &[u8]| {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            signature::sign(secret, &raw).parse().unwrap(),
        );
        h
    };
    assert!(s
        .webhook
        .handle(&headers(b"registered-secret"), &raw)
        .await
        .is_ok());
    let refused = s
        .webhook
        .handle(&headers(b"local-app-secret"), &raw)
        .await
        .unwrap_err();
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED.as_u16());

    let e = admin(
        &data,
        &[
            "whatsapp",
            "register",
            "--tenant",
            "nobody",
            "--phone-number-id",
            "1",
            "--display-phone-number",
            "1",
        ],
    )
    .await
    .unwrap_err();
    assert!(e.contains("no tenant"), "{e}");
}

/// A channel stopped by an account-wide error is listed and resumed by the operator.
#[tokio::test]
async fn a_stopped_channel_is_listed_and_resumed() {
    use cobro::domain::ChannelKind;
    use cobro::repo::ChannelStop;

    let (_dir, data, s) = stack_in_a_temp_dir().await;
    let t = demo::tenant_id();
    let stop = ChannelStop {
        tenant: t.clone(),
        channel: ChannelKind::Whatsapp,
        reason: "(#131031) Business Account locked".into(),
        code: Some(131031),
        at: "2026-03-16T15:00:00Z".parse().unwrap(),
        announced: true,
    };
    assert!(s.store.stop_channel(&stop).await.unwrap());
    let listed: serde_json::Value =
        admin_json(&data, &["channel", "stops", "--tenant", "demo"]).await;
    assert_eq!(listed[0]["channel"], "whatsapp", "{listed}");
    assert_eq!(listed[0]["code"], 131031, "{listed}");
    let resume = |channel: &'static str| {
        let data = data.clone();
        async move {
            let args = [
                "channel",
                "resume",
                "--tenant",
                "demo",
                "--channel",
                channel,
            ];
            admin(&data, &args).await
        }
    };
    let e = resume("fax").await.unwrap_err();
    assert!(e.contains("not a channel"), "{e}");
    let out = resume("whatsapp").await.unwrap();
    assert!(
        out.starts_with("whatsapp resumed for tenant `demo`"),
        "{out}"
    );
    assert!(s.store.channel_stops(&t).await.unwrap().is_empty());
    let again = resume("whatsapp").await.unwrap();
    assert_eq!(again, "whatsapp is not stopped for tenant `demo`");
}

#[tokio::test]
async fn dead_letters_are_replayed_once_and_why_explains_an_account() {
    let (_dir, data, s) = stack_in_a_temp_dir().await;
    let batch = (0..3)
        .map(|i| Outgoing::new(i.to_string(), format!("{{\"n\":{i}}}")))
        .collect();
    s.outbound_dlq.send_batch(batch).await.unwrap();
    let before = s.outbound.depth().await.unwrap();
    let out = admin(&data, &["dlq", "replay", "outbound"]).await.unwrap();
    assert_eq!(out, "3 message(s) moved back to the source queue");
    assert_eq!(s.outbound.depth().await.unwrap(), before + 3);
    assert_eq!(s.outbound_dlq.depth().await.unwrap(), 0);
    let again = admin(&data, &["dlq", "replay", "outbound"]).await.unwrap();
    assert!(
        again.starts_with("0 "),
        "a second replay moves nothing: {again}"
    );
    assert!(admin(&data, &["dlq", "replay", "elsewhere"]).await.is_err());

    // The demo accounts are due from the moment they were loaded: a tick later decides.
    s.clock.advance(jiff::SignedDuration::from_hours(48));
    s.tick().await.unwrap();
    let why: serde_json::Value = admin_json(&data, &["why", "--tenant", "demo", "CL-1001"]).await;
    assert_eq!(why["account"], "CL-1001");
    let decisions = why["decisions"].as_array().unwrap();
    assert!(!decisions.is_empty(), "{why}");
    assert!(decisions[0]["reason"].is_string(), "{why}");
    let e = admin(&data, &["why", "--tenant", "demo", "NOPE-1"])
        .await
        .unwrap_err();
    assert!(e.contains("no account"), "{e}");
}

#[tokio::test]
async fn the_aws_target_replays_sqs_dead_letters_and_registers_numbers_on_moto() {
    let Some(moto) = cobro_tests::moto::moto().await else {
        return;
    };
    let table = cobro_tests::moto::unique("admin");
    let store = cobro::repo::Store::new(Arc::new(moto.create_table(&table).await));
    let dlq_name = cobro_tests::moto::unique("dlq");
    let (dlq, dlq_url) = moto.create_queue(&dlq_name, None).await;
    let (source, source_url) = moto
        .create_queue(&cobro_tests::moto::unique("src"), Some((&dlq_name, 3)))
        .await;
    let batch = (0..12)
        .map(|i| Outgoing::new(i.to_string(), format!("m{i}")))
        .collect();
    cobro::ports::queue::send_all(&dlq, batch).await.unwrap();

    let prefix = format!("{}/", cobro_tests::moto::unique("cobro"));
    let target = Target::aws(&moto.config, &table, &prefix);
    let replay = |max: &str| {
        Cli::try_parse_from([
            "cobro-admin",
            "--aws",
            "dlq",
            "replay",
            "--from",
            &dlq_url,
            "--to",
            &source_url,
            "--max",
            max,
        ])
        .unwrap()
        .command
    };
    assert_eq!(
        execute(&target, replay("100")).await.unwrap(),
        "12 message(s) moved back to the source queue"
    );
    assert_eq!(
        execute(&target, replay("100")).await.unwrap(),
        "0 message(s) moved back to the source queue"
    );
    let mut bodies = Vec::new();
    loop {
        let got = source
            .receive(10, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        bodies.extend(got.into_iter().map(|m| m.body));
    }
    bodies.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);

    // A number registered on AWS: the route in DynamoDB, the secrets in Secrets Manager.
    let mut tenant = demo_tenant();
    tenant["id"] = json!("acme");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.json", &tenant);
    let secrets = write(dir.path(), "s.json", &json!({ "app_secret": "aws-secret" }));
    let command = |args: &[&str]| {
        let mut argv = vec!["cobro-admin", "--aws"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().command
    };
    execute(&target, command(&["tenant", "create", &file]))
        .await
        .unwrap();
    execute(
        &target,
        command(&[
            "whatsapp",
            "register",
            "--tenant",
            "acme",
            "--phone-number-id",
            "555",
            "--display-phone-number",
            "5",
            "--secrets",
            &secrets,
        ]),
    )
    .await
    .unwrap();
    assert!(store.whatsapp_number("555").await.unwrap().is_some());
    let manager = cobro::adapters::aws::SecretsManager::new(aws_sdk_secretsmanager::Client::new(
        &moto.config,
    ));
    let found = cobro::ports::secrets::whatsapp_number(&manager, &prefix, "555")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.app_secret, "aws-secret");
}

/// A payment as cobro stored it before the payment-id record and `recorded_at` existed: the
/// payment item alone, on the month index or (older still) not.
fn old_payment(
    account: &str,
    currency: &str,
    id: &str,
    paid_at: &str,
    month_index: bool,
) -> cobro::ports::Item {
    let t = demo::tenant_id();
    let a = cobro::domain::AccountId::parse(account).unwrap();
    let paid: jiff::Timestamp = paid_at.parse().unwrap();
    let key = cobro::repo::keys::payment(&t, &a, id);
    let mut item = json!({
        "pk": key.pk, "sk": key.sk, "kind": "payment",
        "tenant": "demo", "account": account, "id": id,
        "amount": { "minor": 1_000, "currency": currency }, "paid_at": paid_at,
        "method": "transfer", "source": "crm", "applied_minor": 1_000
    });
    if month_index {
        let month = paid.strftime("%Y-%m").to_string();
        item["gsi1pk"] = json!(cobro::repo::keys::gsi1_payments(&t, &month));
        item["gsi1sk"] = json!(cobro::repo::keys::gsi1_payment_sk(
            paid.as_millisecond(),
            &a,
            id
        ));
    }
    item.as_object().unwrap().clone()
}

/// The payments of one UTC day on the recorded index (the daily file) or the month index (the
/// period ledger): (account, payment id, recorded_at).
async fn payments_of_day(
    store: &cobro::repo::Store,
    by: cobro::export::PaymentTime,
    day: &str,
) -> Vec<(String, String, Option<jiff::Timestamp>)> {
    let from: jiff::Timestamp = format!("{day}T00:00:00Z").parse().unwrap();
    let until = from + jiff::SignedDuration::from_hours(24);
    let month = from.strftime("%Y-%m").to_string();
    let page = store
        .payments_page(
            &demo::tenant_id(),
            by,
            &month,
            (from.as_millisecond(), until.as_millisecond()),
            100,
            None,
        )
        .await
        .unwrap();
    page.entries
        .into_iter()
        .filter_map(|e| match e {
            cobro::repo::LedgerEntry::Payment {
                payment,
                recorded_at,
            } => Some((
                payment.account.to_string(),
                payment.id.to_string(),
                recorded_at,
            )),
            cobro::repo::LedgerEntry::Credit(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn payments_stored_before_their_records_are_backfilled_once() {
    use cobro::export::PaymentTime::{PaidAt, RecordedAt};
    use cobro::ports::table::Update;
    let (_dir, data, s) = stack_in_a_temp_dir().await;
    let t = demo::tenant_id();
    let table = s.store.table();
    for item in [
        old_payment("CL-1001", "CLP", "old-1", "2026-02-10T12:00:00Z", true),
        old_payment("BR-2002", "BRL", "old-2", "2026-01-05T09:00:00Z", false),
        // One id applied to two accounts, before cobro kept one account per payment id.
        old_payment("CL-1001", "CLP", "dup-1", "2026-02-10T13:00:00Z", true),
        old_payment("US-4004", "USD", "dup-1", "2026-02-10T13:00:00Z", true),
    ] {
        table.put(item, None).await.unwrap();
    }
    // Applied with a payment-id record that says when, but no `recorded_at` on the payment nor
    // entry on the recorded index: that time is the one to keep.
    let applied: jiff::Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
    let pen = |account: &str, id: &str| cobro::repo::PaymentConfirmed {
        tenant: t.clone(),
        account: cobro::domain::AccountId::parse(account).unwrap(),
        payment_id: cobro::domain::PaymentId::parse(id).unwrap(),
        amount_minor: 1_000,
        currency: cobro::domain::Currency::parse("PEN").unwrap(),
        paid_at: "2026-03-01T10:00:00Z".parse().unwrap(),
        method: "transfer".into(),
        source: "crm".into(),
    };
    for id in ["half-1", "new-1"] {
        s.store
            .apply_payment(&pen("PE-5005", id), applied)
            .await
            .unwrap();
    }
    let pe = cobro::domain::AccountId::parse("PE-5005").unwrap();
    table
        .update(
            &cobro::repo::keys::payment(&t, &pe, "half-1"),
            vec![Update::remove("recorded_at")],
            None,
        )
        .await
        .unwrap();
    table
        .delete(
            &cobro::repo::keys::recorded_payment(&t, applied, &pe, "half-1"),
            None,
        )
        .await
        .unwrap();
    let old_1 = cobro::domain::PaymentId::parse("old-1").unwrap();
    assert_eq!(s.store.payment_applied_to(&t, &old_1).await.unwrap(), None);
    assert!(payments_of_day(&s.store, RecordedAt, "2026-02-10")
        .await
        .is_empty());

    let run = |args: &'static [&'static str]| {
        let data = data.clone();
        async move {
            let mut argv = vec!["payments", "backfill", "--tenant", "demo"];
            argv.extend_from_slice(args);
            let out = admin(&data, &argv).await.unwrap();
            serde_json::from_str::<serde_json::Value>(&out).unwrap()
        }
    };
    let counts = |v: &serde_json::Value| {
        [
            "payments",
            "markers_written",
            "recorded_at_written",
            "recorded_at_from_paid_at",
            "recorded_index_written",
            "month_index_written",
            "complete",
        ]
        .map(|k| v[k].as_u64().unwrap())
    };
    // What it would write: a payment-id record for old-1, old-2 and dup-1 (on CL-1001, the
    // first walked: cl-maria sorts before us-john), `recorded_at` and its entry for all but
    // new-1 (complete), the month index for old-2. dup-1 on US-4004 is a conflict, found
    // without writing anything.
    let dry = run(&["--dry-run"]).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry), [6, 3, 5, 4, 5, 1, 1], "{dry}");
    let conflicts = dry["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{dry}");
    assert_eq!(
        (
            conflicts[0]["account"].as_str(),
            conflicts[0]["payment_id"].as_str()
        ),
        (Some("US-4004"), Some("dup-1"))
    );
    assert!(
        conflicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("`CL-1001`"),
        "{dry}"
    );
    assert_eq!(dry["last_debtor"], "us-john");
    assert_eq!(
        s.store.payment_applied_to(&t, &old_1).await.unwrap(),
        None,
        "a dry run writes nothing"
    );
    assert!(payments_of_day(&s.store, RecordedAt, "2026-02-10")
        .await
        .is_empty());

    let done = run(&[]).await;
    assert_eq!(done["dry_run"], false);
    assert_eq!(counts(&done), counts(&dry), "{done}");
    assert_eq!(done["conflicts"], dry["conflicts"]);
    // The cross-account check finds them now.
    let cl = cobro::domain::AccountId::parse("CL-1001").unwrap();
    assert_eq!(
        s.store.payment_applied_to(&t, &old_1).await.unwrap(),
        Some(cl.clone())
    );
    let dup_1 = cobro::domain::PaymentId::parse("dup-1").unwrap();
    assert_eq!(
        s.store.payment_applied_to(&t, &dup_1).await.unwrap(),
        Some(cl),
        "the first record stands"
    );
    // The daily file of their paid_at's day has them (recorded_at = paid_at), dup-1 on both
    // accounts, as the balances had it.
    let at = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
    assert_eq!(
        payments_of_day(&s.store, RecordedAt, "2026-02-10").await,
        [
            ("CL-1001".into(), "old-1".into(), at("2026-02-10T12:00:00Z")),
            ("CL-1001".into(), "dup-1".into(), at("2026-02-10T13:00:00Z")),
            ("US-4004".into(), "dup-1".into(), at("2026-02-10T13:00:00Z")),
        ]
    );
    // The one whose applying time was known keeps it; the one without the month index has it.
    let recorded_on = |day| payments_of_day(&s.store, RecordedAt, day);
    assert_eq!(
        recorded_on("2026-03-02").await,
        [
            ("PE-5005".into(), "half-1".into(), Some(applied)),
            ("PE-5005".into(), "new-1".into(), Some(applied)),
        ]
    );
    assert_eq!(
        payments_of_day(&s.store, PaidAt, "2026-01-05").await,
        [("BR-2002".into(), "old-2".into(), at("2026-01-05T09:00:00Z"))]
    );

    // Again: nothing left to write, the conflict still reported.
    let again = run(&[]).await;
    assert_eq!(counts(&again), [6, 0, 0, 0, 0, 0, 6], "{again}");
    assert_eq!(again["conflicts"], dry["conflicts"]);
    // Resumed after a debtor: only the debtors after it.
    let resumed = run(&["--after-debtor", "pe-lucia"]).await;
    assert_eq!(
        (resumed["debtors"].as_u64(), resumed["payments"].as_u64()),
        (Some(1), Some(1)),
        "{resumed}"
    );
    let e = admin(&data, &["payments", "backfill", "--tenant", "nope"])
        .await
        .unwrap_err();
    assert!(e.contains("no tenant `nope`"), "{e}");
}

/// A tenant as an operator writes one: only the fields without defaults.
fn demo_tenant() -> serde_json::Value {
    json!({ "id": "acme", "name": "Acme", "country": "CL", "channels": ["whatsapp"] })
}
