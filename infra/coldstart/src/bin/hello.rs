//! The baseline: a hello-world `lambda_runtime` function, as the lambda-perf project measures
//! (same runtime flavour as cobro's functions, so the comparison is like for like).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({ "hello": "world" }))
    }))
    .await
}
