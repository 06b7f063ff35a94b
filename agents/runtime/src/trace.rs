//! Distributed tracing from agent to agent (`docs/architecture.md#tracing`).
//!
//! The W3C `traceparent` (and `tracestate`) travel in Kafka record headers. With an OTLP
//! endpoint configured, every handled record becomes a consumer span, child of the
//! context its producer put in the headers, exported over OTLP/HTTP; the agent's
//! outputs carry that span's context, so a trace follows a member event through every
//! agent. Without an endpoint nothing is exported and the incoming context is passed
//! through unchanged, so a trace survives agents that do not export.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use rdkafka::message::{Headers, OwnedHeaders};

use crate::config::RuntimeSettings;
use crate::error::RuntimeError;

/// Header names of the W3C trace context, defined once.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The standard variables that switch export on without `otlp_endpoint`.
const OTLP_ENV: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// An agent's tracer: exporting through OTLP, or passing contexts through.
pub struct Tracing {
    exporting: Option<(SdkTracerProvider, SdkTracer)>,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// Export if `otlp_endpoint` (or a standard OTLP variable) says where to.
    pub fn new(agent: &'static str, settings: &RuntimeSettings) -> Result<Tracing, RuntimeError> {
        let from_env = OTLP_ENV.iter().any(|v| std::env::var_os(v).is_some());
        if settings.otlp_endpoint.is_none() && !from_env {
            return Ok(Tracing::pass_through());
        }
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(base) = &settings.otlp_endpoint {
            // A programmatic endpoint is used verbatim; the base URL convention of the
            // OTLP variables (signal path appended) is what operators expect.
            exporter = exporter.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
        }
        let exporter = exporter
            .build()
            .map_err(|e| RuntimeError::Other(format!("OTLP trace exporter: {e}")))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.trace_sample_ratio,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(agent)
                    .build(),
            )
            .build();
        let tracer = provider.tracer(agent);
        Ok(Tracing {
            exporting: Some((provider, tracer)),
            propagator: TraceContextPropagator::new(),
        })
    }

    /// No export; contexts pass from input to outputs unchanged.
    pub fn pass_through() -> Tracing {
        Tracing {
            exporting: None,
            propagator: TraceContextPropagator::new(),
        }
    }

    /// Start tracing one input record. `headers` are the record's Kafka headers.
    pub fn record(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        headers: Option<&OwnedHeaders>,
    ) -> RecordTrace {
        let incoming = TraceHeaders::read(headers);
        let Some((_, tracer)) = &self.exporting else {
            return RecordTrace {
                context: None,
                headers: incoming.0,
            };
        };
        let parent = self.propagator.extract(&incoming);
        let span = tracer
            .span_builder(format!("process {topic}"))
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.destination.name", topic.to_owned()),
                KeyValue::new("messaging.destination.partition.id", partition.to_string()),
                KeyValue::new("messaging.kafka.offset", offset),
            ])
            .start_with_context(tracer, &parent);
        let context = parent.with_span(span);
        let mut outgoing = TraceHeaders::default();
        self.propagator.inject_context(&context, &mut outgoing);
        RecordTrace {
            context: Some(context),
            headers: outgoing.0,
        }
    }

    /// Export what is buffered; called once on shutdown.
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.exporting {
            let _ = provider.shutdown();
        }
    }
}

/// The trace of one input record: the headers its outputs carry, and its span (ended
/// on drop).
pub struct RecordTrace {
    context: Option<Context>,
    /// `traceparent`/`tracestate` for every record produced because of this one.
    pub headers: Vec<(String, String)>,
}

impl RecordTrace {
    /// Mark the span failed: the record went to the DLQ.
    pub fn rejected(&self, reason: &str) {
        if let Some(context) = &self.context {
            context.span().set_status(Status::error(reason.to_owned()));
        }
    }
}

impl Drop for RecordTrace {
    fn drop(&mut self) {
        if let Some(context) = &self.context {
            context.span().end();
        }
    }
}

/// The trace-context headers of one record, as the propagator reads and writes them.
#[derive(Default)]
struct TraceHeaders(Vec<(String, String)>);

impl TraceHeaders {
    fn read(headers: Option<&OwnedHeaders>) -> TraceHeaders {
        let mut found = Vec::new();
        for header in headers.into_iter().flat_map(|h| h.iter()) {
            if (header.key == TRACEPARENT || header.key == TRACESTATE)
                && let Some(Ok(value)) = header.value.map(std::str::from_utf8)
            {
                found.push((header.key.to_owned(), value.to_owned()));
            }
        }
        TraceHeaders(found)
    }
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Header;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers() -> OwnedHeaders {
        OwnedHeaders::new()
            .insert(Header {
                key: "other",
                value: Some("x"),
            })
            .insert(Header {
                key: TRACEPARENT,
                value: Some(PARENT),
            })
    }

    #[test]
    fn without_export_the_context_passes_through_unchanged() {
        let trace = Tracing::pass_through().record("t", 0, 7, Some(&headers()));
        assert_eq!(
            trace.headers,
            vec![(TRACEPARENT.to_owned(), PARENT.to_owned())]
        );
        let none = Tracing::pass_through().record("t", 0, 7, None);
        assert!(none.headers.is_empty());
    }

    #[test]
    fn exporting_makes_a_child_span_in_the_same_trace() {
        let settings = RuntimeSettings {
            // Nothing listens here; the batch exporter only logs its failures.
            otlp_endpoint: Some("http://127.0.0.1:9".into()),
            ..RuntimeSettings::default()
        };
        let tracing = Tracing::new("test-agent", &settings).unwrap();
        let trace = tracing.record("t", 0, 7, Some(&headers()));
        let (_, child) = trace
            .headers
            .iter()
            .find(|(k, _)| k == TRACEPARENT)
            .unwrap();
        let parts: Vec<&str> = child.split('-').collect();
        assert_eq!(
            parts[1], "4bf92f3577b34da6a3ce929d0e0e4736",
            "same trace id"
        );
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id");
        assert_eq!(parts[3], "01", "sampled, as its parent");
        drop(trace);
        tracing.shutdown();
    }
}
