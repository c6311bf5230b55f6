//! `Secrets` on AWS Secrets Manager: one JSON secret string per name (or ARN).

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::{code, describe};
use crate::ports::secrets::{Secrets, SecretsError};

#[derive(Clone)]
pub struct SecretsManager {
    client: Client,
}

impl SecretsManager {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn backend<E>(
    e: &aws_sdk_secretsmanager::error::SdkError<
        E,
        aws_sdk_secretsmanager::config::http::HttpResponse,
    >,
) -> SecretsError
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    SecretsError::Backend(describe(e))
}

#[async_trait]
impl Secrets for SecretsManager {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        let out = match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(backend(&e)),
        };
        let text = out.secret_string().ok_or_else(|| SecretsError::Malformed {
            name: name.to_string(),
            reason: "it holds binary, not a JSON string".into(),
        })?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| SecretsError::Malformed {
                name: name.to_string(),
                reason: e.to_string(),
            })
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        let text = value.to_string();
        match self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(&text)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {
                match self
                    .client
                    .create_secret()
                    .name(name)
                    .secret_string(&text)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // Created by a concurrent put: store this value as its next version.
                    Err(e) if code(&e) == Some("ResourceExistsException") => self
                        .client
                        .put_secret_value()
                        .secret_id(name)
                        .secret_string(&text)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| backend(&e)),
                    Err(e) => Err(backend(&e)),
                }
            }
            Err(e) => Err(backend(&e)),
        }
    }
}
