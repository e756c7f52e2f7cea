//! W3C `traceparent` propagation across Kafka: read it from the current span, attach it to a span.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The current span's `traceparent`, if it belongs to a sampled trace.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The trace id of `span` (32 hex digits), for log lines; empty if it has none.
pub fn trace_id(span: &tracing::Span) -> String {
    use opentelemetry::trace::TraceContextExt as _;
    let id = span.context().span().span_context().trace_id();
    if id == opentelemetry::trace::TraceId::INVALID {
        return String::new();
    }
    id.to_string()
}

/// Makes `span` a child of the trace named by `traceparent`.
pub fn set_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}
