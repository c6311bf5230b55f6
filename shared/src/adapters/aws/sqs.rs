//! `Queue` on SQS.

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::time::Duration;

use super::{code, describe};
use crate::ports::queue::{check_batch, Outgoing, Queue, QueueError, Received};

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            url: queue_url.into(),
        }
    }
}

fn backend<E>(
    e: aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    QueueError::Backend(describe(&e))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, messages: Vec<Outgoing>) -> Result<(), QueueError> {
        check_batch(&messages)?;
        let entries = messages
            .into_iter()
            .map(|m| {
                SendMessageBatchRequestEntry::builder()
                    .id(m.id)
                    .message_body(m.body)
                    .delay_seconds(m.delay.as_secs() as i32)
                    .build()
                    .map_err(|e| QueueError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(backend)?;
        if !out.failed().is_empty() {
            let failed: Vec<String> = out
                .failed()
                .iter()
                .map(|f| {
                    format!(
                        "`{}` ({}: {})",
                        f.id(),
                        f.code(),
                        f.message().unwrap_or_default()
                    )
                })
                .collect();
            return Err(QueueError::Backend(format!(
                "SQS refused entries {}",
                failed.join(", ")
            )));
        }
        Ok(())
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        if !(1..=10).contains(&max) {
            return Err(QueueError::Invalid(format!(
                "receive takes 1 to 10 messages, not {max}"
            )));
        }
        let visibility = visibility.as_secs_f64().ceil() as i32;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max as i32)
            .visibility_timeout(visibility)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Deleting twice is not an error: the message is gone either way.
            Err(e) if code(&e) == Some("ReceiptHandleIsInvalid") => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}
