//! `swarm bench-offers`: how long a subscriber on the cancel page waits for an offer.
//! On a fresh embedded stack, save-offer-catalog and save-offer run in this process on
//! the demo's sample catalog; members with a value wait; cancellation requests are sent
//! at a fixed rate, and each proposal read back is timed from the moment its request was
//! handed to the producer to the moment the proposal was received.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use apache_avro::AvroSchema;
use loyalty_contracts::{MemberEvent, OfferProposal, topics};
use loyalty_runtime::codec;
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Config, wire};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde::Serialize;

use crate::demo::agents::Swarm;
use crate::replay::{encoder, record};
use crate::{offers, setup, stack};

/// What `swarm bench-offers` measures.
#[derive(Debug, Clone)]
pub struct LatencyOptions {
    pub rate_per_second: u32,
    pub seconds: u32,
    pub members: usize,
    pub partitions: i32,
    /// save-offer's `batch_max_wait_ms` (how long a batch may wait to fill).
    pub batch_max_wait_ms: u64,
    /// librdkafka's `fetch.wait.max.ms` for save-offer and the proposal reader.
    pub fetch_wait_max_ms: Option<u64>,
}

/// Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub requests: usize,
    pub proposals: usize,
    #[serde(flatten)]
    pub timings: Timings,
}

/// What a latency benchmark measured, in milliseconds, and where the agent's time went,
/// from its own metrics: mean records per batch, and the mean of `batch_seconds` and of
/// each `write_seconds` step.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    pub offered_rate_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub records_per_batch: f64,
    pub batch_mean_ms: f64,
    pub write_mean_ms: BTreeMap<String, f64>,
}

impl Timings {
    /// Whether the percentiles are positive and in order (p50 ≤ p90 ≤ p99 ≤ max).
    pub fn ordered(&self) -> bool {
        0.0 < self.p50_ms
            && self.p50_ms <= self.p90_ms
            && self.p90_ms <= self.p99_ms
            && self.p99_ms <= self.max_ms
    }

    /// From the round trips' latencies (sorted) and the agent's `/metrics` text.
    fn of(latencies: &[f64], sent: usize, sending: Duration, exposition: &str) -> Self {
        let series = AgentSeries::parse(exposition);
        Timings {
            offered_rate_per_second: sent as f64 / sending.as_secs_f64().max(1e-9),
            p50_ms: percentile(latencies, 0.50),
            p90_ms: percentile(latencies, 0.90),
            p99_ms: percentile(latencies, 0.99),
            max_ms: latencies.last().copied().unwrap_or(f64::NAN),
            records_per_batch: series.ratio("records_consumed_total", "batches_committed_total"),
            batch_mean_ms: series.mean_ms("batch_seconds", None),
            write_mean_ms: ["outputs", "changelog", "commit", "transaction"]
                .into_iter()
                .map(|step| (step.to_owned(), series.mean_ms("write_seconds", Some(step))))
                .filter(|(_, mean)| mean.is_finite())
                .collect(),
        }
    }
}

/// Send `requests` (id, record) at `rate_per_second`, each produced on its own (a
/// subscriber's browser does not wait for others), and time each answer read from
/// `consumer` from the moment its request was handed to the producer to the moment the
/// answer arrived; `request_of` names the request an answer (Avro body under its writer
/// schema) belongs to. Then read the agent's `/metrics` at `metrics_url`. Gives up on
/// answers `seconds + 60` s after the first request.
pub(crate) async fn round_trips(
    producer: rdkafka::producer::FutureProducer,
    requests: Vec<(String, kafka::OutRecord)>,
    rate_per_second: u32,
    consumer: &StreamConsumer,
    registry: &RegistryClient,
    request_of: impl Fn(&apache_avro::Schema, &[u8]) -> anyhow::Result<String>,
    metrics_url: &str,
) -> anyhow::Result<(Timings, usize)> {
    let total = requests.len();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_second.max(1)));
    let seconds = total as u64 / u64::from(rate_per_second.max(1));
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let sender = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut pending = tokio::task::JoinSet::new();
            for (n, (id, r)) in requests.into_iter().enumerate() {
                tokio::time::sleep_until((started + interval * n as u32).into()).await;
                if let Ok(mut s) = sent.lock() {
                    s.insert(id, Instant::now());
                }
                let producer = producer.clone();
                pending.spawn(async move { kafka::produce_all(&producer, &[r]).await });
            }
            while let Some(sent) = pending.join_next().await {
                sent??;
            }
            anyhow::Ok(started.elapsed())
        })
    };
    let mut latencies = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while latencies.len() < total && Instant::now() < deadline {
        let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await
        else {
            continue;
        };
        let received = Instant::now();
        let message = message?;
        let Some(bytes) = message.payload() else {
            continue;
        };
        let (id, body) = wire::split(bytes).map_err(|r| anyhow::anyhow!("answer: {r}"))?;
        let request = request_of(registry.schema(id).await?.as_ref(), body)?;
        let sent_at = sent.lock().ok().and_then(|mut s| s.remove(&request));
        if let Some(at) = sent_at {
            latencies.push(received.duration_since(at).as_secs_f64() * 1000.0);
        }
    }
    let sending = sender.await.context("sender")??;
    let exposition = reqwest::get(metrics_url).await?.text().await?;
    latencies.sort_by(f64::total_cmp);
    Ok((
        Timings::of(&latencies, total, sending, &exposition),
        latencies.len(),
    ))
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn bench_offers(options: &LatencyOptions) -> anyhow::Result<LatencyReport> {
    on_fresh_stack(options.partitions, |bootstrap, registry| async move {
        measure(options, &bootstrap, &registry).await
    })
    .await
}

/// Run `measure` on a fresh embedded stack with the contract set up (`partitions` per
/// member-keyed topic), given its bootstrap servers and registry URL; the stack is shut
/// down whatever came of it.
pub(crate) async fn on_fresh_stack<T, F, Fut>(partitions: i32, measure: F) -> anyhow::Result<T>
where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let s = stack::start(&stack::StackOptions {
        kafka: format!("127.0.0.1:{}", stack::free_port()?).parse()?,
        registry: format!("127.0.0.1:{}", stack::free_port()?).parse()?,
        storage: None,
    })
    .await?;
    let (bootstrap, registry) = (s.bootstrap_servers.clone(), s.registry_url.clone());
    let measured = async {
        setup::setup(&setup::Target {
            bootstrap_servers: bootstrap.clone(),
            registry_url: registry.clone(),
            partitions,
            replication: 1,
            librdkafka: BTreeMap::new(),
            member_stream_retention_ms: loyalty_runtime::config::MEMBER_STREAM_RETENTION_MS,
        })
        .await?;
        measure(bootstrap, registry).await
    }
    .await;
    s.shutdown().await;
    measured
}

/// A reader of the answers on `topic` in its own group, joined (partitions assigned)
/// before the first request goes out. The topic is new: reading it from the start
/// cannot miss an answer given before this reader's first fetch position is known.
pub(crate) async fn answer_reader(
    bootstrap: &str,
    group: &str,
    topic: &str,
    fetch_wait_max_ms: Option<u64>,
) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = kafka::base_config(bootstrap, &BTreeMap::new())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "fetch.wait.max.ms",
            fetch_wait_max_ms.unwrap_or(500).to_string(),
        )
        .create()?;
    consumer.subscribe(&[topic])?;
    let settle = Instant::now() + Duration::from_secs(30);
    while consumer.assignment()?.count() == 0 && Instant::now() < settle {
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
    }
    Ok(consumer)
}

async fn measure(
    options: &LatencyOptions,
    bootstrap: &str,
    registry_url: &str,
) -> anyhow::Result<LatencyReport> {
    offers::publish_catalog(bootstrap, registry_url).await?;
    let registry = RegistryClient::new(registry_url)?;
    let producer = kafka::producer(bootstrap, &BTreeMap::new())?;
    let members: Vec<String> = (0..options.members)
        .map(|i| format!("member-{i:06}"))
        .collect();
    offers::publish_members(bootstrap, registry_url, &members).await?;

    let runtime = {
        let mut c: Config<loyalty_runtime::NoSettings> = Config::default();
        c.runtime.bootstrap_servers = bootstrap.into();
        c.runtime.schema_registry_url = registry_url.into();
        c.runtime.partitions = options.partitions;
        c.runtime.erasure_key_file = Some(crate::demo::agents::erasure_key_file()?);
        c.runtime
    };
    let mut swarm = Swarm::new("");
    let catalog =
        crate::demo::agents::downstream_config::<loyalty_runtime::NoSettings>(&runtime, 30_000);
    swarm.spawn(save_offer::OfferCatalog, catalog);
    let deadline = Instant::now() + Duration::from_secs(60);
    while crate::inspect::record_count(bootstrap, topics::OFFER_CATALOG)? < 16 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the catalog was not published within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut config =
        crate::demo::agents::downstream_config::<save_offer::Settings>(&runtime, 30_000);
    let port = stack::free_port()?;
    config.runtime.http_listen = format!("127.0.0.1:{port}");
    config.runtime.batch_max_wait_ms = options.batch_max_wait_ms;
    if let Some(wait) = options.fetch_wait_max_ms {
        config
            .runtime
            .librdkafka
            .insert("fetch.wait.max.ms".into(), wait.to_string());
    }
    swarm.spawn(save_offer::SaveOffer::new(&config.agent), config);
    crate::demo::wait_ready(
        &format!("127.0.0.1:{port}"),
        "save-offer",
        Duration::from_secs(120),
    )
    .await?;
    // The members' values are in before the clock starts.
    let group = "loyalty-swarm.save-offer".to_owned();
    let consumed =
        loyalty_runtime::runner::consumed_topics(&save_offer::SaveOffer::new(&Default::default()));
    anyhow::ensure!(
        crate::inspect::wait_caught_up(bootstrap, &group, &consumed, Duration::from_secs(120))
            .await?,
        "save-offer did not read the members' values within 120 s"
    );

    let consumer = answer_reader(
        bootstrap,
        "loyalty-swarm.bench-offers",
        topics::OFFER_PROPOSALS,
        options.fetch_wait_max_ms,
    )
    .await?;

    let events = encoder(&registry, topics::MEMBER_EVENTS, MemberEvent::get_schema()).await?;
    let total = (options.rate_per_second * options.seconds) as usize;
    let mut requests = Vec::with_capacity(total);
    for n in 0..total {
        let member = &members[n % members.len()];
        let id = format!("bench-cancel-{n}");
        let at = save_offer::testkit::NOW + n as i64;
        let event = save_offer::testkit::cancellation(member, &id, "too expensive", at);
        let r = record(
            &events,
            topics::MEMBER_EVENTS,
            member,
            &event,
            "cancellation request",
        )?;
        requests.push((format!("cancellation:{id}"), r));
    }
    let (timings, answered) = round_trips(
        producer,
        requests,
        options.rate_per_second,
        &consumer,
        &registry,
        |schema, body| {
            let p: OfferProposal =
                codec::decode(schema, body).map_err(|r| anyhow::anyhow!("proposal: {r}"))?;
            Ok(p.proposal_id)
        },
        &format!("http://127.0.0.1:{port}/metrics"),
    )
    .await?;
    swarm.stop().await?;
    Ok(LatencyReport {
        requests: total,
        proposals: answered,
        timings,
    })
}

/// An agent's Prometheus exposition, summed per metric name and `step` label.
pub(crate) struct AgentSeries(HashMap<(String, Option<String>), f64>);

impl AgentSeries {
    pub(crate) fn parse(exposition: &str) -> Self {
        let mut sums = HashMap::new();
        for line in exposition.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let step = labels
                .split(',')
                .find_map(|l| l.strip_prefix("step=\""))
                .map(|v| v.trim_end_matches(['}', '"']).to_owned());
            let name = name.trim_start_matches("loyalty_swarm_").to_owned();
            *sums.entry((name, step)).or_insert(0.0) += value;
        }
        AgentSeries(sums)
    }

    fn get(&self, name: &str, step: Option<&str>) -> f64 {
        self.0
            .get(&(name.to_owned(), step.map(str::to_owned)))
            .copied()
            .unwrap_or(f64::NAN)
    }

    pub(crate) fn ratio(&self, numerator: &str, denominator: &str) -> f64 {
        self.get(numerator, None) / self.get(denominator, None)
    }

    /// A histogram's mean, in milliseconds.
    pub(crate) fn mean_ms(&self, histogram: &str, step: Option<&str>) -> f64 {
        1000.0 * self.get(&format!("{histogram}_sum"), step)
            / self.get(&format!("{histogram}_count"), step)
    }
}
