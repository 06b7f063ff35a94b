//! A Confluent schema-registry client with caching.
//!
//! Schemas are immutable per id, so a fetched id is cached for the life of the process;
//! the hot path never touches the network after the first record of each writer schema.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry unreachable at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("registry answered {status} for {what}: {body}")]
    Status {
        status: u16,
        what: String,
        body: String,
    },
    #[error("schema id {0} is not registered")]
    UnknownId(u32),
    #[error("subject {0} does not hold this schema")]
    NotFound(String),
    #[error("registry returned a schema that does not parse: {0}")]
    BadSchema(String),
}

impl RegistryError {
    /// Connection failures and server errors are worth retrying; 4xx answers are not.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A registered schema: its id and parsed form.
pub type Registered = Arc<(u32, Schema)>;

#[derive(Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    by_id: Arc<RwLock<HashMap<u32, Arc<Schema>>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish()
    }
}

#[derive(Serialize)]
struct SchemaBody<'a> {
    schema: &'a str,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaText {
    schema: String,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

impl RegistryClient {
    pub fn new(base_url: &str) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| RegistryError::Unreachable {
                url: base_url.to_owned(),
                source,
            })?;
        Ok(RegistryClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            by_id: Arc::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Register `schema` under `subject` (idempotent: an identical schema keeps its id).
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let text = schema.canonical_form();
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let id: IdBody = self
            .send(
                self.http.post(&url).json(&SchemaBody { schema: &text }),
                &url,
            )
            .await?;
        self.remember(id.id, schema.clone());
        Ok(id.id)
    }

    /// The id `schema` already has under `subject`, without registering it.
    pub async fn lookup(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let text = schema.canonical_form();
        let url = format!("{}/subjects/{subject}", self.base);
        let id: IdBody = match self
            .send(
                self.http.post(&url).json(&SchemaBody { schema: &text }),
                &url,
            )
            .await
        {
            Err(RegistryError::Status { status: 404, .. }) => {
                return Err(RegistryError::NotFound(subject.to_owned()));
            }
            other => other?,
        };
        self.remember(id.id, schema.clone());
        Ok(id.id)
    }

    /// The writer schema for `id`, from the cache or the registry.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let text: SchemaText = match self.send(self.http.get(&url), &url).await {
            // Confluent answers 404 (error code 40403) for an id it does not hold; a
            // registry that cannot even read the id (one above its integer range, say)
            // answers 400 or 422. Either way the record names no schema: bad data, not an
            // outage, and retrying would stop the partition for good.
            Err(RegistryError::Status {
                status: 400 | 404 | 422,
                ..
            }) => {
                return Err(RegistryError::UnknownId(id));
            }
            other => other?,
        };
        let schema =
            Schema::parse_str(&text.schema).map_err(|e| RegistryError::BadSchema(e.to_string()))?;
        Ok(self.remember(id, schema))
    }

    /// A cached schema, without any I/O.
    pub fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.by_id.read().ok().and_then(|m| m.get(&id).cloned())
    }

    fn remember(&self, id: u32, schema: Schema) -> Arc<Schema> {
        let schema = Arc::new(schema);
        if let Ok(mut map) = self.by_id.write() {
            map.insert(id, schema.clone());
        }
        schema
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, RegistryError> {
        let response = request
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .send()
            .await
            .map_err(|source| RegistryError::Unreachable {
                url: url.to_owned(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(RegistryError::Status {
                status: status.as_u16(),
                what: url.to_owned(),
                body,
            });
        }
        response
            .json()
            .await
            .map_err(|source| RegistryError::Unreachable {
                url: url.to_owned(),
                source,
            })
    }
}
