//! `Secrets` in a directory: the local stack's stand-in for Secrets Manager, one JSON file per
//! name under `<data dir>/secrets`, readable by the owner only (Unix).

use async_trait::async_trait;
use std::path::{Path, PathBuf};

use crate::ports::secrets::{check_name, Secrets, SecretsError};

#[derive(Debug, Clone)]
pub struct DirSecrets {
    root: PathBuf,
}

impl DirSecrets {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretsError> {
        check_name(name)?;
        Ok(self.root.join(format!("{name}.json")))
    }
}

fn backend(e: std::io::Error) -> SecretsError {
    SecretsError::Backend(e.to_string())
}

#[async_trait]
impl Secrets for DirSecrets {
    async fn get(&self, name: &str) -> Result<Option<serde_json::Value>, SecretsError> {
        match tokio::fs::read(self.path(name)?).await {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| SecretsError::Malformed {
                    name: name.to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn put(&self, name: &str, value: &serde_json::Value) -> Result<(), SecretsError> {
        let path = self.path(name)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(backend)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, value.to_string())
            .await
            .map_err(backend)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(backend)?;
        }
        tokio::fs::rename(&tmp, &path).await.map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_absence() {
        let dir = std::env::temp_dir().join(format!("cobro-secrets-{}", uuid::Uuid::new_v4()));
        let s = DirSecrets::new(&dir);
        assert_eq!(s.get("p/whatsapp/1").await.unwrap(), None);
        let v = serde_json::json!({"app_secret": "x"});
        s.put("p/whatsapp/1", &v).await.unwrap();
        assert_eq!(s.get("p/whatsapp/1").await.unwrap(), Some(v));
        assert!(s.get("../escape").await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
