//! A Confluent-compatible schema registry for the embedded stack, persisted in the
//! broker's `_schemas` topic the way Confluent's own registry does it (JSON key and
//! value per registered version), so a restart with durable storage keeps every id.
//!
//! It serves the REST subset the Confluent clients use: register, lookup, get by id,
//! versions and latest, list subjects, compatibility checks and config. It assumes it is
//! the only writer of `_schemas`, which holds for the single-process local stack.

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use loyalty_runtime::kafka::{self, OutRecord, TopicSpec};
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

pub const SCHEMAS_TOPIC: &str = "_schemas";

/// Compatibility levels, as Confluent names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

#[derive(Debug, Clone)]
struct Version {
    version: i32,
    id: i32,
    text: String,
    schema: Schema,
}

#[derive(Debug, Default)]
struct Registry {
    /// Global ids: one id per distinct schema (by canonical form), shared across subjects.
    by_id: BTreeMap<i32, (String, Schema)>,
    subjects: BTreeMap<String, Vec<Version>>,
    global_level: Option<Level>,
    subject_level: BTreeMap<String, Level>,
}

/// The level new subjects get: the contract demands BACKWARD_TRANSITIVE (`docs/architecture.md#topics-and-contracts`).
const DEFAULT_LEVEL: Level = Level::BackwardTransitive;

impl Registry {
    fn level(&self, subject: &str) -> Level {
        self.subject_level
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or(DEFAULT_LEVEL)
    }

    fn id_for(&self, canonical: &str) -> Option<i32> {
        self.by_id
            .iter()
            .find(|(_, (_, s))| s.canonical_form() == canonical)
            .map(|(id, _)| *id)
    }

    /// Incompatibilities of `candidate` with the subject's versions under its level.
    fn incompatibilities(&self, subject: &str, candidate: &Schema, level: Level) -> Vec<String> {
        let versions = self
            .subjects
            .get(subject)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let against: Vec<&Version> = match level {
            Level::None => vec![],
            Level::Backward | Level::Forward | Level::Full => versions.last().into_iter().collect(),
            _ => versions.iter().collect(),
        };
        let mut problems = Vec::new();
        for old in against {
            let backward = matches!(
                level,
                Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
            );
            let forward = matches!(
                level,
                Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
            );
            if backward && let Err(e) = SchemaCompatibility::can_read(&old.schema, candidate) {
                problems.push(format!(
                    "new schema cannot read version {}: {e}",
                    old.version
                ));
            }
            if forward && let Err(e) = SchemaCompatibility::can_read(candidate, &old.schema) {
                problems.push(format!(
                    "version {} cannot read the new schema: {e}",
                    old.version
                ));
            }
        }
        problems
    }

    fn apply(&mut self, record: &SchemaValue) -> Result<(), String> {
        let schema = Schema::parse_str(&record.schema).map_err(|e| e.to_string())?;
        self.by_id
            .entry(record.id)
            .or_insert_with(|| (record.schema.clone(), schema.clone()));
        let versions = self.subjects.entry(record.subject.clone()).or_default();
        versions.retain(|v| v.version != record.version);
        if !record.deleted {
            versions.push(Version {
                version: record.version,
                id: record.id,
                text: record.schema.clone(),
                schema,
            });
            versions.sort_by_key(|v| v.version);
        }
        Ok(())
    }
}

/// The value of a `_schemas` record (Confluent's layout).
#[derive(Debug, Serialize, Deserialize)]
struct SchemaValue {
    subject: String,
    version: i32,
    id: i32,
    schema: String,
    #[serde(default)]
    deleted: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Level,
}

#[derive(Clone)]
struct App {
    registry: Arc<Mutex<Registry>>,
    producer: FutureProducer,
}

/// Errors in Confluent's shape: HTTP status plus `{"error_code", "message"}`.
struct ApiError(StatusCode, u32, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error_code": self.1, "message": self.2})),
        )
            .into_response()
    }
}

fn subject_not_found(subject: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        40401,
        format!("Subject '{subject}' not found."),
    )
}

#[derive(Deserialize)]
struct SchemaRequest {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryServerError {
    #[error(transparent)]
    Runtime(#[from] loyalty_runtime::RuntimeError),
    #[error("_schemas holds a record that does not parse: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The registry as `_schemas` holds it, read from the beginning.
async fn rebuild(consumer: &StreamConsumer) -> Result<Registry, RegistryServerError> {
    let mut registry = Registry::default();
    let mut corrupt = None;
    kafka::read_to_end(consumer, SCHEMAS_TOPIC, 0, |key, value, _, _| {
        let (Some(key), Some(value)) = (key, value) else {
            return Ok(());
        };
        let key: serde_json::Value = serde_json::from_slice(key).unwrap_or_default();
        let outcome = match key.get("keytype").and_then(|k| k.as_str()) {
            Some("SCHEMA") => serde_json::from_slice::<SchemaValue>(value)
                .map_err(|e| e.to_string())
                .and_then(|v| registry.apply(&v)),
            Some("CONFIG") => serde_json::from_slice::<ConfigValue>(value)
                .map_err(|e| e.to_string())
                .map(|c| match key.get("subject").and_then(|s| s.as_str()) {
                    Some(subject) => {
                        registry
                            .subject_level
                            .insert(subject.to_owned(), c.compatibility_level);
                    }
                    None => registry.global_level = Some(c.compatibility_level),
                }),
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            corrupt.get_or_insert(e);
        }
        Ok(())
    })
    .await?;
    if let Some(e) = corrupt {
        return Err(RegistryServerError::Corrupt(e));
    }
    Ok(registry)
}

/// Rebuild the registry from `_schemas`, then serve it on `listener` until `shutdown`.
pub async fn serve(
    bootstrap_servers: &str,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryServerError> {
    let none = BTreeMap::new();
    kafka::ensure_topics(
        bootstrap_servers,
        &none,
        &[TopicSpec {
            name: SCHEMAS_TOPIC.into(),
            partitions: 1,
            // The broker's default.replication.factor, as for the agents' own topics: a
            // cluster that requires min.insync.replicas > 1 refuses writes to a
            // single-replica topic.
            replication: -1,
            compacted: true,
            retention_ms: None,
        }],
    )
    .await?;
    let consumer: StreamConsumer = kafka::base_config(bootstrap_servers, &none)
        .set("group.id", "loyalty-swarm.schema-registry")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(loyalty_runtime::RuntimeError::from)?;
    // `ensure_topics` above has waited until `_schemas` has its leader.
    let registry = rebuild(&consumer).await?;
    let producer = kafka::producer(bootstrap_servers, &none)?;
    let app = App {
        registry: Arc::new(Mutex::new(registry)),
        producer,
    };
    let router = Router::new()
        .route("/", get(|| async { Json(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route("/schemas/ids/{id}", get(get_by_id))
        .route("/schemas/ids/{id}/schema", get(get_by_id_raw))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_compatibility),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_compatibility_all),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config).put(put_subject_config),
        )
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn persist(
    app: &App,
    key: serde_json::Value,
    value: serde_json::Value,
) -> Result<(), ApiError> {
    let record = OutRecord {
        topic: SCHEMAS_TOPIC.into(),
        partition: Some(0),
        key: key.to_string(),
        payload: Some(value.to_string().into_bytes()),
        timestamp: None,
        headers: Vec::new(),
    };
    kafka::produce_all(&app.producer, std::slice::from_ref(&record))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                50001,
                format!("cannot persist to _schemas: {e}"),
            )
        })
}

fn parse(request: &SchemaRequest) -> Result<Schema, ApiError> {
    if let Some(kind) = &request.schema_type
        && kind != "AVRO"
    {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("schema type {kind} is not supported"),
        ));
    }
    Schema::parse_str(&request.schema).map_err(|e| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("Invalid schema: {e}"),
        )
    })
}

async fn register(
    State(app): State<App>,
    Path(subject): Path<String>,
    Json(request): Json<SchemaRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let schema = parse(&request)?;
    let canonical = schema.canonical_form();
    // One writer at a time: ids and versions are assigned under the lock.
    let mut registry = app.registry.lock().await;
    if let Some(existing) = registry
        .subjects
        .get(&subject)
        .and_then(|vs| vs.iter().find(|v| v.schema.canonical_form() == canonical))
    {
        return Ok(Json(json!({"id": existing.id})));
    }
    let problems = registry.incompatibilities(&subject, &schema, registry.level(&subject));
    if !problems.is_empty() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {}",
                problems.join("; ")
            ),
        ));
    }
    let id = registry
        .id_for(&canonical)
        .unwrap_or_else(|| registry.by_id.keys().next_back().map_or(1, |m| m + 1));
    let version = registry
        .subjects
        .get(&subject)
        .and_then(|v| v.last())
        .map_or(1, |v| v.version + 1);
    let value = SchemaValue {
        subject: subject.clone(),
        version,
        id,
        schema: request.schema.clone(),
        deleted: false,
    };
    persist(
        &app,
        json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}),
        serde_json::to_value(&value).unwrap_or_default(),
    )
    .await?;
    registry
        .apply(&value)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, 50001, e))?;
    Ok(Json(json!({"id": id})))
}

fn version_json(subject: &str, v: &Version) -> serde_json::Value {
    json!({"subject": subject, "version": v.version, "id": v.id, "schema": v.text})
}

async fn lookup(
    State(app): State<App>,
    Path(subject): Path<String>,
    Json(request): Json<SchemaRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let canonical = parse(&request)?.canonical_form();
    let registry = app.registry.lock().await;
    let versions = registry
        .subjects
        .get(&subject)
        .ok_or_else(|| subject_not_found(&subject))?;
    versions
        .iter()
        .find(|v| v.schema.canonical_form() == canonical)
        .map(|v| Json(version_json(&subject, v)))
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, 40403, "Schema not found".into()))
}

async fn list_subjects(State(app): State<App>) -> Json<Vec<String>> {
    let registry = app.registry.lock().await;
    Json(
        registry
            .subjects
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(s, _)| s.clone())
            .collect(),
    )
}

async fn list_versions(
    State(app): State<App>,
    Path(subject): Path<String>,
) -> Result<Json<Vec<i32>>, ApiError> {
    let registry = app.registry.lock().await;
    let versions = registry
        .subjects
        .get(&subject)
        .ok_or_else(|| subject_not_found(&subject))?;
    Ok(Json(versions.iter().map(|v| v.version).collect()))
}

fn find_version<'a>(
    registry: &'a Registry,
    subject: &str,
    version: &str,
) -> Result<&'a Version, ApiError> {
    let versions = registry
        .subjects
        .get(subject)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| subject_not_found(subject))?;
    let found = if version == "latest" || version == "-1" {
        versions.last()
    } else {
        let n: i32 = version.parse().map_err(|_| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                42202,
                format!("Invalid version {version}"),
            )
        })?;
        versions.iter().find(|v| v.version == n)
    };
    found.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found."),
        )
    })
}

async fn get_version(
    State(app): State<App>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = app.registry.lock().await;
    Ok(Json(version_json(
        &subject,
        find_version(&registry, &subject, &version)?,
    )))
}

async fn get_version_schema(
    State(app): State<App>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<String, ApiError> {
    let registry = app.registry.lock().await;
    Ok(find_version(&registry, &subject, &version)?.text.clone())
}

fn schema_by_id(registry: &Registry, id: &str) -> Result<String, ApiError> {
    id.parse::<i32>()
        .ok()
        .and_then(|id| registry.by_id.get(&id))
        .map(|(text, _)| text.clone())
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                40403,
                format!("Schema {id} not found"),
            )
        })
}

/// Ids are taken as text: an id that is no integer the registry could have assigned
/// (one above `i32::MAX`, say, read from a record's random bytes) is a schema not found,
/// 404 with error code 40403, as Confluent answers, not a malformed request.
async fn get_by_id(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let registry = app.registry.lock().await;
    Ok(Json(json!({"schema": schema_by_id(&registry, &id)?})))
}

async fn get_by_id_raw(State(app): State<App>, Path(id): Path<String>) -> Result<String, ApiError> {
    let registry = app.registry.lock().await;
    schema_by_id(&registry, &id)
}

async fn check_compatibility(
    State(app): State<App>,
    Path((subject, version)): Path<(String, String)>,
    Json(request): Json<SchemaRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let schema = parse(&request)?;
    let registry = app.registry.lock().await;
    let old = find_version(&registry, &subject, &version)?;
    let level = registry.level(&subject);
    // Against one named version: the level's direction without its transitivity.
    let mut single = Registry::default();
    single.subjects.insert(subject.clone(), vec![old.clone()]);
    let problems = single.incompatibilities(&subject, &schema, level);
    Ok(Json(
        json!({"is_compatible": problems.is_empty(), "messages": problems}),
    ))
}

async fn check_compatibility_all(
    State(app): State<App>,
    Path(subject): Path<String>,
    Json(request): Json<SchemaRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let schema = parse(&request)?;
    let registry = app.registry.lock().await;
    let problems = registry.incompatibilities(&subject, &schema, registry.level(&subject));
    Ok(Json(
        json!({"is_compatible": problems.is_empty(), "messages": problems}),
    ))
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Level,
}

async fn get_global_config(State(app): State<App>) -> Json<serde_json::Value> {
    let registry = app.registry.lock().await;
    Json(json!({"compatibilityLevel": registry.global_level.unwrap_or(DEFAULT_LEVEL)}))
}

async fn put_global_config(
    State(app): State<App>,
    Json(request): Json<ConfigRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut registry = app.registry.lock().await;
    persist(
        &app,
        json!({"keytype": "CONFIG", "subject": null, "magic": 0}),
        json!({"compatibilityLevel": request.compatibility}),
    )
    .await?;
    registry.global_level = Some(request.compatibility);
    Ok(Json(json!({"compatibility": request.compatibility})))
}

async fn get_subject_config(
    State(app): State<App>,
    Path(subject): Path<String>,
) -> Json<serde_json::Value> {
    let registry = app.registry.lock().await;
    Json(json!({"compatibilityLevel": registry.level(&subject)}))
}

async fn put_subject_config(
    State(app): State<App>,
    Path(subject): Path<String>,
    Json(request): Json<ConfigRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut registry = app.registry.lock().await;
    persist(
        &app,
        json!({"keytype": "CONFIG", "subject": subject, "magic": 0}),
        json!({"compatibilityLevel": request.compatibility}),
    )
    .await?;
    registry
        .subject_level
        .insert(subject, request.compatibility);
    Ok(Json(json!({"compatibility": request.compatibility})))
}
