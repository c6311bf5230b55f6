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
