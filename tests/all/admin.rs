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

/// A tenant as an operator writes one: only the fields without defaults.
fn demo_tenant() -> serde_json::Value {
    json!({ "id": "acme", "name": "Acme", "country": "CL", "channels": ["whatsapp"] })
}
