//! The AWS side of the tests: moto server, started by `make test`, found through
//! `COBRO_MOTO_URL`. Every test makes its own table, queues and bus, named with `unique`, so
//! tests run in parallel against one moto and never see each other's data.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;

use cobro::adapters::aws::{DynamoTable, EventBridgeBus, SqsQueue};
use cobro::ports::table::{INDEXES, PK, SK, TTL};
use cobro::ports::Pattern;
use cobro::ports::{Item, Table};
use std::sync::Arc;

use crate::hooked_table::{HookedTable, Hooks, WriteGuard};

pub struct Moto {
    pub endpoint: String,
    pub config: SdkConfig,
}

/// The moto server of this test run, or `None` when there is none (the caller skips). With
/// `COBRO_REQUIRE_MOTO=1` a missing moto is a failure, so CI cannot skip silently.
pub async fn moto() -> Option<Moto> {
    let Ok(endpoint) = std::env::var("COBRO_MOTO_URL") else {
        if std::env::var("COBRO_REQUIRE_MOTO").as_deref() == Ok("1") {
            panic!(
                "COBRO_REQUIRE_MOTO=1 but COBRO_MOTO_URL is not set: start moto (make test does)"
            );
        }
        println!("SKIPPED (set COBRO_MOTO_URL)");
        return None;
    };
    let config = sdk_config(&endpoint).await;
    Some(Moto { endpoint, config })
}

/// An SDK configuration pointed at `endpoint` (moto, or a fake service) with test credentials
/// in us-east-1, as a Lambda's would be with `AWS_ENDPOINT_URL` set.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(cobro::adapters::aws::config::system_https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "cobro-tests",
        ))
        .load()
        .await
}

/// `prefix` with a random suffix: a name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `inner` with its writes run one at a time, as DynamoDB isolates each: moto runs concurrent
/// TransactWriteItems without isolation, and one that fails restores its snapshot of the whole
/// table, undoing whatever was written meanwhile, by another transaction or by a single put or
/// update, which DynamoDB never does. Reads run at once, so a write made on what was read
/// still races the others' and meets their conditions.
pub fn serialized_writes(inner: Arc<dyn Table>) -> Arc<HookedTable<SerializedWrites>> {
    HookedTable::new(inner, SerializedWrites::default())
}

/// The hook of `serialized_writes`: one lock held by each write.
#[derive(Default)]
pub struct SerializedWrites {
    lock: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait::async_trait]
impl Hooks for SerializedWrites {
    async fn writing(&self, _puts: &[&Item]) -> WriteGuard {
        Some(Box::new(self.lock.clone().lock_owned().await))
    }
}

fn s_attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("complete")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("complete")
}

impl Moto {
    /// A bucket (made with the S3 SDK, as the stack's template would), and cobro's S3 adapter
    /// on it, path-style: moto has no per-bucket host names.
    pub async fn create_bucket(&self, name: &str) -> cobro::adapters::aws::S3Http {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("moto creates the bucket");
        cobro::adapters::aws::S3Http::new(
            name,
            "us-east-1",
            cobro::adapters::aws::S3Endpoint::PathStyle(self.endpoint.clone()),
            self.config
                .credentials_provider()
                .expect("the test configuration has credentials"),
        )
    }

    /// A table shaped as template.yaml declares it: pk/sk, the GSIs of `INDEXES`, TTL on `ttl`.
    pub async fn create_table(&self, name: &str) -> DynamoTable {
        let client = aws_sdk_dynamodb::Client::new(&self.config);
        let mut create = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .attribute_definitions(s_attr(PK))
            .attribute_definitions(s_attr(SK));
        for idx in INDEXES {
            create = create
                .attribute_definitions(s_attr(idx.pk))
                .attribute_definitions(s_attr(idx.sk))
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(idx.name)
                        .key_schema(key(idx.pk, KeyType::Hash))
                        .key_schema(key(idx.sk, KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .expect("complete"),
                );
        }
        create.send().await.expect("create table");
        // moto's tables are ACTIVE at once; AWS's take seconds. Wait either way, boundedly.
        let mut status = None;
        for _ in 0..100 {
            let d = client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .expect("describe table");
            status = d.table().and_then(|t| t.table_status()).cloned();
            if status == Some(TableStatus::Active) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            status,
            Some(TableStatus::Active),
            "table {name} never became ACTIVE"
        );
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL)
                    .enabled(true)
                    .build()
                    .expect("complete"),
            )
            .send()
            .await
            .expect("enable TTL");
        // The adapter on the client the functions build (transaction conflicts retried).
        DynamoTable::new(cobro::adapters::aws::dynamodb_client(&self.config), name)
    }

    /// A standard queue named `name` and its URL; with `redrive = Some((dlq_name, n))`, a
    /// message received `n` times without a delete moves to the (existing) queue `dlq_name`.
    pub async fn create_queue(
        &self,
        name: &str,
        redrive: Option<(&str, u32)>,
    ) -> (SqsQueue, String) {
        let client = aws_sdk_sqs::Client::new(&self.config);
        let mut create = client.create_queue().queue_name(name);
        if let Some((dlq_name, max_receives)) = redrive {
            let dlq_url = client
                .get_queue_url()
                .queue_name(dlq_name)
                .send()
                .await
                .expect("dead-letter queue URL")
                .queue_url()
                .expect("url")
                .to_string();
            let arn = self.queue_arn(&dlq_url).await;
            // SQS takes the policy as a JSON string whose count is itself a string.
            let policy = serde_json::json!({
                "deadLetterTargetArn": arn,
                "maxReceiveCount": max_receives.to_string(),
            });
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = create
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("url")
            .to_string();
        (SqsQueue::new(client, url.clone()), url)
    }

    pub async fn queue_arn(&self, url: &str) -> String {
        aws_sdk_sqs::Client::new(&self.config)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("queue ARN")
            .clone()
    }

    /// A custom bus named `bus` with one rule routing `pattern` to the queue at `target_url`.
    /// (On AWS the queue would also need a policy letting EventBridge send; moto does not ask.)
    pub async fn create_bus_with_rule(
        &self,
        bus: &str,
        pattern: &Pattern,
        target_url: &str,
    ) -> EventBridgeBus {
        let client = aws_sdk_eventbridge::Client::new(&self.config);
        client
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .expect("create bus");
        let rule = unique("rule");
        client
            .put_rule()
            .name(&rule)
            .event_bus_name(bus)
            .event_pattern(pattern.to_json().to_string())
            .send()
            .await
            .expect("put rule");
        let arn = self.queue_arn(target_url).await;
        let targets = client
            .put_targets()
            .rule(&rule)
            .event_bus_name(bus)
            .targets(
                Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("complete"),
            )
            .send()
            .await
            .expect("put targets");
        assert_eq!(
            targets.failed_entry_count(),
            0,
            "put targets: {:?}",
            targets.failed_entries()
        );
        EventBridgeBus::new(client, bus)
    }
}
