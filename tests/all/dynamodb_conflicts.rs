//! DynamoDB's transaction conflicts, against a stand-in that answers in DynamoDB's own JSON
//! error format (moto never reports a conflict): a write refused because another transaction
//! holds the item, and a transaction cancelled by another, are retried by the adapter's client
//! and then succeed; a cancellation for a failed condition is an answer, not retried.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use cobro::adapters::aws::{dynamodb_client, DynamoTable};
use cobro::ports::table::{Condition, Item, Table, TableError, WriteOp};
use serde_json::{json, Value};

const CONFLICT: &str = "com.amazonaws.dynamodb.v20120810#TransactionConflictException";
const CANCELLED: &str = "com.amazonaws.dynamodb.v20120810#TransactionCanceledException";

/// What the stand-in answers, in turn, and which operations it was asked for.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(StatusCode, Value)>>,
    asked: Mutex<Vec<String>>,
}

async fn stand_in(script: Arc<Script>) -> DynamoTable {
    let seen = script.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let script = seen.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            script.asked.lock().unwrap().push(target);
            let (status, body) = script
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((StatusCode::OK, json!({})));
            (
                status,
                [("content-type", "application/x-amz-json-1.0")],
                body.to_string(),
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cobro::adapters::aws::config::system_https_client())
        .endpoint_url(base)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        // The SDK's standard retry, with its first wait short for the test.
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .load()
        .await;
    DynamoTable::new(dynamodb_client(&sdk), "cobro")
}

fn item(sk: &str) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), json!("T#t#ACCOUNT#a"));
    item.insert("sk".into(), json!(sk));
    item
}

fn cancelled(reasons: &[&str]) -> (StatusCode, Value) {
    let reasons: Vec<Value> = reasons.iter().map(|c| json!({ "Code": c })).collect();
    (
        StatusCode::BAD_REQUEST,
        json!({
            "__type": CANCELLED,
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            "CancellationReasons": reasons,
        }),
    )
}

#[tokio::test]
async fn a_write_meeting_another_transaction_is_retried_and_lands() {
    let script = Arc::new(Script::default());
    script.answers.lock().unwrap().push_back((
        StatusCode::BAD_REQUEST,
        json!({ "__type": CONFLICT, "message": "Transaction is ongoing for the item" }),
    ));
    let table = stand_in(script.clone()).await;

    table
        .put(item("ACCOUNT"), Some(Condition::NotExists))
        .await
        .expect("retried after the conflict");
    assert_eq!(
        *script.asked.lock().unwrap(),
        vec!["DynamoDB_20120810.PutItem"; 2]
    );
}

#[tokio::test]
async fn a_transaction_cancelled_by_another_is_retried_and_one_cancelled_by_a_condition_is_not() {
    let script = Arc::new(Script::default());
    let table = stand_in(script.clone()).await;
    let ops = || {
        vec![
            WriteOp::Put {
                item: item("ACCOUNT"),
                condition: None,
            },
            WriteOp::Put {
                item: item("PAYMENT#p-1"),
                condition: Some(Condition::NotExists),
            },
        ]
    };

    script
        .answers
        .lock()
        .unwrap()
        .push_back(cancelled(&["None", "TransactionConflict"]));
    table
        .transact_write(ops())
        .await
        .expect("retried after the conflict");
    assert_eq!(script.asked.lock().unwrap().len(), 2);

    script.asked.lock().unwrap().clear();
    script
        .answers
        .lock()
        .unwrap()
        .push_back(cancelled(&["None", "ConditionalCheckFailed"]));
    assert_eq!(
        table.transact_write(ops()).await,
        Err(TableError::TransactionCanceled(vec![false, true]))
    );
    assert_eq!(
        script.asked.lock().unwrap().len(),
        1,
        "a failed condition is an answer"
    );

    // Conflicts that last past the SDK's attempts: an error, never a silent success.
    script.asked.lock().unwrap().clear();
    for _ in 0..3 {
        script
            .answers
            .lock()
            .unwrap()
            .push_back(cancelled(&["TransactionConflict", "None"]));
    }
    let err = table.transact_write(ops()).await.unwrap_err();
    assert!(matches!(err, TableError::Backend(_)), "{err:?}");
    assert_eq!(
        script.asked.lock().unwrap().len(),
        3,
        "the SDK's three attempts"
    );
}
