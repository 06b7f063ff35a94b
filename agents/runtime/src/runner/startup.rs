//! Start-up: everything an agent needs before its first record — output schemas
//! registered, the producer (transactions initialised under exactly_once), its own
//! topics created, and the co-partitioning of its inputs checked. Each step that needs
//! the broker or the registry is retried while they are away, and ends on shutdown.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;

use super::Shared;
use super::topics::{
    changelog_topic, co_partitioning_problems, dlq_topic, input_partitions, own_topics,
    repartition_topic, summaries_topic,
};
use super::transactions::{default_transactional_id, transactional_producer};
use crate::agent::{Agent, rekeys};
use crate::codec::{Encoder, leak};
use crate::config::{Config, ProcessingGuarantee};
use crate::context::TableView;
use crate::erasure;
use crate::error::RuntimeError;
use crate::kafka;
use crate::metrics::Metrics;
use crate::purge::RepartitionPurge;
use crate::registry::RegistryClient;
use crate::retry::Backoff;
use crate::trace::Tracing;

/// Everything the loop shares, ready to run.
pub(super) async fn start<A: Agent>(
    agent: A,
    config: Config<A::Settings>,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
) -> Result<Shared<A>, RuntimeError> {
    agent
        .register_metrics(&metrics)
        .map_err(|e| RuntimeError::Other(format!("{}'s metrics: {e}", A::NAME)))?;
    let rt = &config.runtime;
    // The loop's writes may go on retrying through the drain; start-up has nothing to
    // finish, so a shutdown ends its retries at once.
    let backoff = Backoff::new(
        Duration::from_millis(rt.retry_initial_ms),
        Duration::from_millis(rt.retry_max_ms),
        stop.clone(),
        Duration::from_millis(rt.drain_timeout_ms),
    );
    let startup = backoff.without_drain();
    let registry = RegistryClient::new(&rt.schema_registry_url)?;
    let erasure = erasure::erases(&agent)
        .then(|| erasure::Registry::load(rt.erasure_key_file.as_deref()))
        .transpose()
        .map_err(|e| RuntimeError::Other(format!("erasure_key_file: {e}")))?;
    let mut encoders = HashMap::new();
    for output in agent
        .outputs()
        .into_iter()
        .chain(agent.internal_topics())
        .chain(erasure::outputs(&agent))
    {
        let schema = output.schema();
        let subject = format!("{}-value", output.topic());
        let id = startup
            .retry("register_schema", &metrics, || async {
                Ok(registry.register(&subject, &schema).await?)
            })
            .await?;
        encoders.insert(output.topic(), Encoder::new(id, leak(schema))?);
    }
    let compacted = agent
        .outputs()
        .iter()
        .filter(|o| o.compacted())
        .map(|o| o.topic())
        .collect();
    let member_compacted = agent
        .outputs()
        .iter()
        .filter(|o| o.compacted() && o.keyed_by_member())
        .map(|o| o.topic())
        .collect();
    let streams = agent
        .outputs()
        .into_iter()
        .chain(erasure::outputs(&agent))
        .filter(|o| !o.compacted())
        .map(|o| o.topic())
        .collect();
    let group = super::topics::group_id::<A>(rt);
    let instance = rt
        .transactional_id
        .clone()
        .unwrap_or_else(|| default_transactional_id(&group, &rt.http_listen));
    let transactional = rt.processing_guarantee == ProcessingGuarantee::ExactlyOnce;
    let producer = if transactional {
        transactional_producer::<A>(rt, &startup, &metrics).await?
    } else {
        kafka::producer(
            &rt.bootstrap_servers,
            &kafka::awaited_batch_settings(&rt.librdkafka),
        )?
    };
    let existing = startup
        .retry("input_partitions", &metrics, || async {
            input_partitions(rt, &agent.inputs())
        })
        .await?;
    let own = own_topics(
        &agent,
        existing.unwrap_or(rt.partitions),
        rt.dlq_retention_ms,
    );
    // Waiting for new topics' leaders can take a minute on a cluster that is slow to
    // elect them: a shutdown meanwhile ends it too.
    let created = startup.retry("create_topics", &metrics, || {
        kafka::ensure_topics(&rt.bootstrap_servers, &rt.librdkafka, &own)
    });
    tokio::select! {
        created = created => created?,
        _ = super::stopped(stop) => {
            return Err(RuntimeError::ShutDown { operation: "create_topics" });
        }
    }

    // Named once per process and subscribed to like the agent's own inputs.
    let repartition: Option<&'static str> =
        rekeys::<A>().then(|| &*Box::leak(repartition_topic::<A>().into_boxed_str()));
    let changelog = changelog_topic::<A>();
    let internal: Vec<&'static str> = agent.internal_topics().iter().map(|t| t.topic()).collect();
    let mut inputs = agent.inputs();
    inputs.extend(repartition);
    inputs.extend(internal.iter().copied());
    let co_partitioned: Vec<&str> = inputs.iter().copied().chain([changelog.as_str()]).collect();
    let problems = startup
        .retry("check_co_partitioning", &metrics, || async {
            co_partitioning_problems(rt, &co_partitioned)
        })
        .await?;
    if !problems.is_empty() {
        return Err(RuntimeError::Other(format!(
            "{} needs partition p of every member-keyed input, its changelog and its \
             repartition topic together; their partition counts differ: {}",
            A::NAME,
            problems.join(", ")
        )));
    }
    Ok(Shared {
        purge: RepartitionPurge::new(rt, repartition.into_iter().chain(internal).collect())?,
        tracing: Tracing::new(A::NAME, rt)?,
        agent,
        metrics,
        registry,
        backoff,
        producer,
        transactional,
        tables: std::sync::Arc::new(TableView::default()),
        encoders,
        decoders: Default::default(),
        inputs,
        repartition,
        changelog,
        dlq: dlq_topic(A::NAME),
        compacted,
        member_compacted,
        streams,
        erasure,
        instance,
        summaries: summaries_topic::<A>(),
        published: Default::default(),
        config,
    })
}
