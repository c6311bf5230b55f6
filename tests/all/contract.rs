//! Each port's contract suite against its embedded adapter and against moto. A moto test
//! without `COBRO_MOTO_URL` prints SKIPPED and passes (`COBRO_REQUIRE_MOTO=1` makes it fail).

use std::sync::Arc;

use cobro::adapters::local_bus::LocalBus;
use cobro::adapters::sqlite::{Redrive, SqliteStore};
use cobro::ports::Queue;
use cobro_tests::contract;
use cobro_tests::moto::{moto, unique};

const MAX_RECEIVES: u32 = 3;

#[tokio::test]
async fn table_sqlite() {
    let store = SqliteStore::open_in_memory().unwrap();
    contract::table::run(&store.table()).await;
}

#[tokio::test]
async fn table_sqlite_file() {
    // The local stack keeps its data in a file: same suite, through the on-disk path.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("cobro.db")).unwrap();
    contract::table::run(&store.table()).await;
}

#[tokio::test]
async fn table_moto() {
    let Some(moto) = moto().await else { return };
    contract::table::run(&moto.create_table(&unique("table")).await).await;
}

#[tokio::test]
async fn queue_sqlite() {
    let store = SqliteStore::open_in_memory().unwrap();
    let redrive = Redrive {
        dead_letter_queue: "dlq".into(),
        max_receives: MAX_RECEIVES,
    };
    contract::queue::run(
        &store.queue("q", Some(redrive)),
        &store.queue("dlq", None),
        MAX_RECEIVES,
    )
    .await;
}

#[tokio::test]
async fn queue_moto() {
    let Some(moto) = moto().await else { return };
    let dlq_name = unique("dlq");
    let (dlq, _) = moto.create_queue(&dlq_name, None).await;
    let (q, _) = moto
        .create_queue(&unique("queue"), Some((&dlq_name, MAX_RECEIVES)))
        .await;
    contract::queue::run(&q, &dlq, MAX_RECEIVES).await;
}

#[tokio::test]
async fn bus_local() {
    let store = SqliteStore::open_in_memory().unwrap();
    let target = Arc::new(store.queue("target", None));
    let bus = LocalBus::new().route(contract::bus::pattern(), target.clone() as Arc<dyn Queue>);
    contract::bus::run(&bus, target.as_ref()).await;
}

#[tokio::test]
async fn bus_moto() {
    let Some(moto) = moto().await else { return };
    let (target, url) = moto.create_queue(&unique("target"), None).await;
    let bus = moto
        .create_bus_with_rule(&unique("bus"), &contract::bus::pattern(), &url)
        .await;
    contract::bus::run(&bus, &target).await;
}

#[tokio::test]
async fn blobs_dir() {
    let dir = tempfile::tempdir().unwrap();
    contract::blobs::run(&cobro::adapters::dir_blobs::DirBlobs::new(dir.path())).await;
}

#[tokio::test]
async fn blobs_moto() {
    let Some(moto) = moto().await else { return };
    contract::blobs::run(&moto.create_bucket(&unique("bucket")).await).await;
}

/// Against a stand-in for S3: a 503 is retried, S3's refusal is reported with its code, and
/// nothing is retried that will not change.
#[tokio::test]
async fn signed_http_s3_retries_what_is_transient_and_names_a_refusal() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use cobro::adapters::aws::{S3Endpoint, S3Http};
    use cobro::ports::{BlobError, Blobs};
    use std::sync::atomic::{AtomicU32, Ordering};

    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let signed = req.uri().query().unwrap_or("").contains("X-Amz-Signature=");
            match (req.method().as_str(), n, signed) {
                (_, _, false) => (StatusCode::BAD_REQUEST, "unsigned").into_response(),
                ("GET", 0, _) => (StatusCode::SERVICE_UNAVAILABLE, "<Error><Code>SlowDown</Code></Error>").into_response(),
                ("GET", _, _) => (StatusCode::OK, "stored bytes").into_response(),
                _ => (
                    StatusCode::FORBIDDEN,
                    "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>",
                )
                    .into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
    );
    let s3 = S3Http::new("b", "us-east-1", S3Endpoint::PathStyle(base), credentials);

    assert_eq!(
        s3.get("k/one").await.unwrap().as_deref(),
        Some(&b"stored bytes"[..])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the 503 was retried once");
    let err = s3
        .put("k/two", b"x".to_vec(), "text/plain")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BlobError::Backend("S3 PUT answered HTTP 403 (AccessDenied)".into())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3, "a refusal is not retried");
}
