//! The `tracing` bridge (features `tracing` and `opentelemetry`): each client and server call
//! is a `tracing` span named after OpenTelemetry's semantic conventions for RPC and messaging.
//!
//! | field | value |
//! | --- | --- |
//! | `otel.name` | `{domain}.{type}.{id}/{method}` |
//! | `otel.kind` | `client` or `server` |
//! | `rpc.system` | `amqp-fabric` |
//! | `rpc.service` | the service called, `{domain}.{type}.{id}` |
//! | `rpc.method` | the method |
//! | `messaging.system` | `rabbitmq` |
//! | `messaging.destination.name` | the method's queue, `{domain}.api.{type}.{id}::{method}` |
//! | `fabric.outcome` | the outcome's label (see `observe`): `ok`, `error`, `timeout`, ... |
//! | `otel.status_code` | `ERROR` for any outcome but `ok` (unset otherwise) |
//! | `error.type` | the outcome's label, for any outcome but `ok` |
//! | `trace_id`, `span_id` | the span's W3C ids (a client span without OpenTelemetry: `trace_id` only) |
//!
//! Spans are at level `INFO`, with the target `fabric_core::rpc`. A server span is a root in
//! `tracing` (`parent: None`): its parent is the caller's, from the message. A client span is
//! a child of the current span (inside a handler, the handler's server span).
//!
//! With `opentelemetry` and a `tracing-opentelemetry` layer installed, OpenTelemetry's ids
//! are the ones on the wire: a server span's parent is set from the `traceparent` received
//! and its own ids become the call's ([`CallContext::trace_id`](crate::CallContext::trace_id)
//! and [`span_id`](crate::CallContext::span_id)); a client call's `traceparent` names the
//! client span. Without such a layer (or without a subscriber) fabric's own ids stay in
//! charge, and a disabled span costs one check and nothing more.

use std::fmt;

use tracing::field::{display, Empty};
use tracing::Span;

use super::OK;
use crate::address::ServiceAddress;
use crate::trace::TraceContext;

/// `rpc.system`: the protocol, amqp-fabric's.
const RPC_SYSTEM: &str = "amqp-fabric";
/// `messaging.system`: the broker.
const MESSAGING_SYSTEM: &str = "rabbitmq";

/// A call's span, `name` (a literal, as `tracing` wants it) of the kind `kind`, with every
/// field of the table above: the client's and the server's differ only in those and the parent.
macro_rules! call_span {
    ($(parent: $parent:expr,)? $name:literal, $kind:literal, $service:expr, $method:expr) => {
        tracing::info_span!(
            target: "fabric_core::rpc",
            $(parent: $parent,)?
            $name,
            otel.name = %Name::Call($service, $method),
            otel.kind = $kind,
            rpc.system = RPC_SYSTEM,
            rpc.service = %Name::Service($service),
            rpc.method = $method,
            messaging.system = MESSAGING_SYSTEM,
            messaging.destination.name = %Name::Queue($service, $method),
            fabric.outcome = Empty,
            otel.status_code = Empty,
            error.type = Empty,
            trace_id = Empty,
            span_id = Empty,
        )
    };
}

/// The span of one call, client or server; disabled when no subscriber wants it.
#[derive(Debug)]
pub(crate) struct CallSpan {
    span: Span,
}

impl CallSpan {
    /// The span of a call of `service`'s `method` about to be sent from `trace`, a child of
    /// the current span. With OpenTelemetry, `trace` becomes the client span's own, so the
    /// call's `traceparent` names it.
    pub(crate) fn client(
        service: &ServiceAddress,
        method: &str,
        trace: &mut TraceContext,
    ) -> CallSpan {
        // The fields are only evaluated when a subscriber wants the span.
        let span = call_span!("fabric.client", "client", service, method);
        if span.is_disabled() {
            return CallSpan { span };
        }
        #[cfg(feature = "opentelemetry")]
        let own = otel::client(&span, trace);
        #[cfg(not(feature = "opentelemetry"))]
        let own = false;
        span.record("trace_id", display(Hex(&trace.trace_id())));
        // Without OpenTelemetry a client call has no span id of its own: the call goes out
        // from the span it was made in.
        if own {
            span.record("span_id", display(Hex(&trace.span_id())));
        }
        CallSpan { span }
    }

    /// The span of a call of `service`'s `method` as a server runs it, in `trace`: continued
    /// from the caller's `traceparent`. With OpenTelemetry the span's parent is the caller's
    /// span and `trace` becomes the span's own.
    pub(crate) fn server(
        service: &ServiceAddress,
        method: &str,
        trace: &mut TraceContext,
    ) -> CallSpan {
        // A root in `tracing`: its parent is the caller's, from the message.
        let span = call_span!(parent: None, "fabric.server", "server", service, method);
        if span.is_disabled() {
            return CallSpan { span };
        }
        #[cfg(feature = "opentelemetry")]
        otel::server(&span, trace);
        span.record("trace_id", display(Hex(&trace.trace_id())));
        span.record("span_id", display(Hex(&trace.span_id())));
        CallSpan { span }
    }

    /// Makes the span current on this thread until the guard is dropped.
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// Records the call's outcome; the span ends when it is dropped.
    pub(crate) fn finish(&self, outcome: &'static str) {
        if self.span.is_disabled() {
            return;
        }
        self.span.record("fabric.outcome", outcome);
        if outcome != OK {
            self.span.record("otel.status_code", "ERROR");
            self.span.record("error.type", outcome);
        }
    }
}

/// The current span's trace, when it has OpenTelemetry ids: what a message sent outside a
/// fabric handler continues. `None` without the `opentelemetry` feature, without a current
/// span, or without an OpenTelemetry layer.
pub(crate) fn ambient_trace() -> Option<TraceContext> {
    #[cfg(feature = "opentelemetry")]
    {
        otel::ambient_trace()
    }
    #[cfg(not(feature = "opentelemetry"))]
    {
        None
    }
}

/// A name made of a service's address, written only if a layer reads the field (a registry
/// alone does not: the span then costs no formatting).
enum Name<'a> {
    /// `{domain}.{type}.{id}`
    Service(&'a ServiceAddress),
    /// `{domain}.{type}.{id}/{method}`
    Call(&'a ServiceAddress, &'a str),
    /// `{domain}.api.{type}.{id}::{method}`
    Queue(&'a ServiceAddress, &'a str),
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Service(service) => write!(
                f,
                "{}.{}.{}",
                service.domain(),
                service.service_type(),
                service.service_id()
            ),
            Name::Call(service, method) => write!(f, "{}/{method}", Name::Service(service)),
            Name::Queue(service, method) => write!(
                f,
                "{}.api.{}.{}::{method}",
                service.domain(),
                service.service_type(),
                service.service_id()
            ),
        }
    }
}

/// Lowercase hex of an id, written only if a layer reads the field.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 32];
        let n = self.0.len().min(16);
        for (i, byte) in self.0[..n].iter().enumerate() {
            text[2 * i] = DIGITS[usize::from(byte >> 4)];
            text[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        // ASCII digits only.
        f.write_str(std::str::from_utf8(&text[..2 * n]).map_err(|_| fmt::Error)?)
    }
}

/// Between fabric's [`TraceContext`] and OpenTelemetry's span contexts.
#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::Context;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::rpc::CallContext;
    use crate::trace::TraceContext;

    /// Gives the client span `span` its parent where `tracing` cannot, then makes `trace`
    /// the span's own; `false` (and `trace` unchanged) when no OpenTelemetry layer is
    /// installed.
    pub(super) fn client(span: &Span, trace: &mut TraceContext) -> bool {
        // A call from a thread a handler attached its call to: no span is current there, so
        // the handler's span (which `trace` is) is the parent.
        if Span::current().is_none() && CallContext::with_current(|call| call.is_some()) {
            let _ = span.set_parent(remote(trace, trace.span_id()));
        }
        adopt(span, trace, None)
    }

    /// Sets the server span's parent to the caller's span named in `trace`, then makes
    /// `trace` the span's own; `trace` unchanged when no OpenTelemetry layer is installed.
    pub(super) fn server(span: &Span, trace: &mut TraceContext) {
        let parent = trace.parent_id();
        // Without a caller's span (a message without `traceparent`), a new trace.
        if let Some(parent) = parent {
            let _ = span.set_parent(remote(trace, parent));
        }
        adopt(span, trace, parent);
    }

    /// The current span's ids, if OpenTelemetry gave it some.
    pub(super) fn ambient_trace() -> Option<TraceContext> {
        let span = Span::current();
        if span.is_none() {
            return None;
        }
        let mut trace = TraceContext::root();
        adopt(&span, &mut trace, None).then_some(trace)
    }

    /// Replaces `trace` with the OpenTelemetry ids of `span`, whose parent is `parent`;
    /// `false` if it has none.
    fn adopt(span: &Span, trace: &mut TraceContext, parent: Option<[u8; 8]>) -> bool {
        let context = span.context();
        let otel_span = context.span();
        let ids = otel_span.span_context();
        if !ids.is_valid() {
            return false;
        }
        let header = ids.trace_state().header();
        let state = if header.is_empty() {
            trace.state().map(str::to_owned)
        } else {
            Some(header)
        };
        *trace = TraceContext::from_parts(
            ids.trace_id().to_bytes(),
            ids.span_id().to_bytes(),
            parent,
            ids.trace_flags().is_sampled(),
            state,
        );
        true
    }

    /// The context of the span `span_id` of `trace`'s trace: a span of another process, or
    /// one fabric knows only by its ids.
    fn remote(trace: &TraceContext, span_id: [u8; 8]) -> Context {
        let flags = if trace.sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let state = trace
            .state()
            .and_then(|state| state.parse::<TraceState>().ok())
            .unwrap_or_default();
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(trace.trace_id()),
            SpanId::from_bytes(span_id),
            flags,
            true,
            state,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> ServiceAddress {
        ServiceAddress::new("shop", "billing", "b1").unwrap()
    }

    /// A call as a server receives it: a child of a caller's span.
    fn received() -> TraceContext {
        let caller = TraceContext::root();
        TraceContext::continue_from(&caller.traceparent(), Some("vendor=1")).unwrap()
    }

    // (Whether the spans are disabled here depends on the other tests: while one of them has
    // a subscriber in scope, `tracing` asks this thread's (none) for every span.)
    #[test]
    fn without_a_subscriber_fabrics_ids_stay() {
        let mut trace = received();
        let before = trace.clone();
        let server = CallSpan::server(&address(), "charge", &mut trace);
        assert_eq!(trace, before);
        let _entered = server.enter();
        let client = CallSpan::client(&address(), "charge", &mut trace);
        assert_eq!(trace, before);
        client.finish("timeout");
        assert_eq!(ambient_trace(), None);
    }

    #[test]
    fn with_a_subscriber_but_no_opentelemetry_layer_fabrics_ids_stay() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let mut trace = received();
            let before = trace.clone();
            let server = CallSpan::server(&address(), "charge", &mut trace);
            assert!(!server.span.is_disabled());
            assert_eq!(trace, before);
            let _entered = server.enter();
            let client = CallSpan::client(&address(), "charge", &mut trace);
            assert!(!client.span.is_disabled());
            assert_eq!(trace, before);
            assert_eq!(ambient_trace(), None);
            client.finish("ok");
        });
    }

    #[cfg(feature = "opentelemetry")]
    #[test]
    fn with_opentelemetry_a_server_span_continues_the_callers_and_gives_its_ids() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("unit")));
        tracing::subscriber::with_default(subscriber, || {
            let mut trace = received();
            let before = trace.clone();
            let server = CallSpan::server(&address(), "charge", &mut trace);
            assert_eq!(trace.trace_id_hex(), before.trace_id_hex());
            assert_eq!(trace.parent_id_hex(), before.parent_id_hex());
            assert_ne!(trace.span_id_hex(), before.span_id_hex());
            assert_eq!(trace.state(), Some("vendor=1"));

            // Inside the handler: a client call names its own span, a child of the server's.
            let _entered = server.enter();
            let server_trace = trace.clone();
            assert_eq!(
                ambient_trace().map(|t| t.span_id_hex()),
                Some(server_trace.span_id_hex())
            );
            let _client = CallSpan::client(&address(), "refund", &mut trace);
            assert_eq!(trace.trace_id_hex(), server_trace.trace_id_hex());
            assert_ne!(trace.span_id_hex(), server_trace.span_id_hex());
        });
    }

    /// What the spans of one call cost, client and server side together, by subscriber.
    /// A measurement, not a test: `cargo test --release -p fabric-core --features
    /// opentelemetry --lib span_cost -- --ignored --nocapture`.
    #[cfg(feature = "opentelemetry")]
    #[test]
    #[ignore = "a measurement: run it in release, alone"]
    fn span_cost() {
        use std::time::{Duration, Instant};

        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        const CALLS: u32 = 20_000;
        fn per_call(spans: bool) -> Duration {
            let address = address();
            let started = Instant::now();
            for _ in 0..CALLS {
                let mut trace = received();
                if spans {
                    let server = CallSpan::server(&address, "charge", &mut trace);
                    {
                        let _entered = server.enter();
                        let client = CallSpan::client(&address, "refund", &mut trace);
                        client.finish("ok");
                    }
                    server.finish("ok");
                }
                std::hint::black_box(&trace);
            }
            started.elapsed() / CALLS
        }
        let baseline = per_call(false);
        let cost = |spans: Duration| spans.saturating_sub(baseline);
        let none = cost(per_call(true));
        let registry = tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            cost(per_call(true))
        });
        // An SDK that samples every span and exports none: the bridge's cost, not an
        // exporter's.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("cost")));
        let otel = tracing::subscriber::with_default(subscriber, || cost(per_call(true)));
        println!(
            "per call, both sides, over {baseline:?} without spans: no subscriber +{none:?}, \
             registry +{registry:?}, registry + tracing-opentelemetry +{otel:?}"
        );
    }
}
