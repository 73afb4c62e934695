//! The `tracing` bridge against a real broker (feature `opentelemetry`): calls become spans
//! of one OpenTelemetry trace across client, server and nested calls, their ids are the ones
//! on the wire, and `tracing` events reach the remote log with their handler's trace.
//!
//! One global subscriber serves every test of this binary (fabric's workers run on threads of
//! their own, where only a global subscriber is seen): a registry with a
//! `tracing-opentelemetry` layer over an SDK whose exporter keeps spans in memory, and a
//! `RemoteLogLayer`. Each test picks its own spans by trace id.

mod support;

use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fabric_core::{fabric_service, CallContext, Fabric, LogFilter, LogRecord, RemoteLogger};
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt, TraceId, TracerProvider};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// How long a reply or a log record may take before the test fails.
const ARRIVAL: Duration = Duration::from_secs(30);

/// The process's tracing pipeline, made once.
struct Pipeline {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    /// The participant the remote log layer ships through, on a domain of its own.
    log_fabric: Fabric,
    logger: RemoteLogger,
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let log_fabric = support::connect(&support::unique_domain("tracing-logs"), "logs", "l1");
        let logger = RemoteLogger::builder(&log_fabric)
            .level(log::LevelFilter::Info)
            .build()
            .expect("start a remote logger");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("fabric-tests")))
            .with(logger.tracing_layer());
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Pipeline {
            exporter,
            provider,
            log_fabric,
            logger,
        }
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Refused(String);

/// The service called first; `ask` calls `Inner` in turn.
#[fabric_service]
pub trait Outer {
    fn ask(&self, x: i64) -> i64;
    /// Asks `Inner` from a thread of its own, attached to the call.
    fn ask_from_thread(&self, x: i64) -> i64;
    fn refuse(&self) -> Result<i64, Refused>;
}

#[fabric_service]
pub trait Inner {
    fn double(&self, x: i64) -> i64;
}

/// What a handler saw of its call: `CallContext`'s trace and span ids.
type Seen = mpsc::Sender<(String, String)>;

struct OuterImpl {
    inner: InnerClient,
    seen: Mutex<Seen>,
}

impl Outer for OuterImpl {
    fn ask(&self, x: i64) -> i64 {
        let call = CallContext::current().expect("inside a call");
        let _ = self
            .seen
            .lock()
            .unwrap()
            .send((call.trace_id().to_owned(), call.span_id().to_owned()));
        tracing::info!(x, "asked");
        self.inner.double(x).expect("the nested call")
    }
    fn ask_from_thread(&self, x: i64) -> i64 {
        let call = CallContext::current().expect("inside a call");
        let inner = self.inner.clone();
        std::thread::spawn(move || {
            let _attached = call.attach();
            inner.double(x).expect("the nested call")
        })
        .join()
        .expect("the thread")
    }
    fn refuse(&self) -> Result<i64, Refused> {
        Err(Refused("no".into()))
    }
}

struct InnerImpl;

impl Inner for InnerImpl {
    fn double(&self, x: i64) -> i64 {
        x * 2
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn text(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .unwrap_or_else(|| panic!("span {} has no attribute {key}", span.name))
        .as_str()
        .into_owned()
}

/// The one finished span of `trace` named `name`.
fn span_named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "spans named {name}: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// The finished spans of `trace`.
fn spans_of(trace: TraceId) -> Vec<SpanData> {
    let pipeline = pipeline();
    pipeline.provider.force_flush().expect("flush the spans");
    pipeline
        .exporter
        .get_finished_spans()
        .expect("read the spans")
        .into_iter()
        .filter(|span| span.span_context.trace_id() == trace)
        .collect()
}

/// Servers of `Outer` and `Inner` on `domain`, and a client of `Outer`.
struct Services {
    _fabrics: Vec<Fabric>,
    servers: Vec<fabric_core::Server>,
    client: OuterClient,
    seen: Receiver<(String, String)>,
}

fn services(domain: &str) -> Services {
    let inner_fabric = support::connect(domain, "inner", "i1");
    let inner_server = InnerServer::new(InnerImpl)
        .serve(&inner_fabric)
        .expect("serve Inner");
    let outer_fabric = support::connect(domain, "outer", "o1");
    let (sender, seen) = mpsc::channel();
    let outer = OuterImpl {
        inner: InnerClient::connect(&outer_fabric, domain, "inner", "i1").expect("Inner client"),
        seen: Mutex::new(sender),
    };
    let outer_server = OuterServer::new(outer)
        .serve(&outer_fabric)
        .expect("serve Outer");
    let client_fabric = support::connect(domain, "caller", "c1");
    let client = OuterClient::connect(&client_fabric, domain, "outer", "o1").expect("client");
    Services {
        _fabrics: vec![inner_fabric, outer_fabric, client_fabric],
        servers: vec![outer_server, inner_server],
        client,
        seen,
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for server in &self.servers {
            let _ = server.close();
        }
    }
}

#[test]
fn calls_are_spans_of_one_trace_whose_ids_travel_on_the_wire() {
    let domain = support::unique_domain("tracing-spans");
    let services = services(&domain);

    pipeline();
    let user = tracing::info_span!("user.request");
    let trace = user.context().span().span_context().trace_id();
    let user_id = user.context().span().span_context().span_id();
    assert_ne!(
        trace,
        TraceId::INVALID,
        "the OpenTelemetry layer is installed"
    );
    user.in_scope(|| {
        assert_eq!(services.client.ask(21).expect("ask"), 42);
        let refused = services.client.refuse().expect("the call itself works");
        assert!(refused.is_err());
    });
    drop(user);
    let (handler_trace, handler_span) = services
        .seen
        .recv_timeout(ARRIVAL)
        .expect("the handler ran");

    let spans = spans_of(trace);
    let outer = format!("{domain}.outer.o1");
    let inner = format!("{domain}.inner.i1");
    let user_span = span_named(&spans, "user.request");
    let client = spans
        .iter()
        .find(|s| s.name == format!("{outer}/ask") && s.span_kind == SpanKind::Client)
        .expect("the client span of ask");
    let server = spans
        .iter()
        .find(|s| s.name == format!("{outer}/ask") && s.span_kind == SpanKind::Server)
        .expect("the server span of ask");
    let nested = spans
        .iter()
        .find(|s| s.name == format!("{inner}/double") && s.span_kind == SpanKind::Client)
        .expect("the nested client span");
    let nested_server = spans
        .iter()
        .find(|s| s.name == format!("{inner}/double") && s.span_kind == SpanKind::Server)
        .expect("the nested server span");

    // One trace, parent to child: user -> client -> server -> nested client -> its server.
    assert_eq!(user_span.span_context.span_id(), user_id);
    assert_eq!(client.parent_span_id, user_id);
    assert_eq!(server.parent_span_id, client.span_context.span_id());
    assert_eq!(nested.parent_span_id, server.span_context.span_id());
    assert_eq!(nested_server.parent_span_id, nested.span_context.span_id());
    assert_ne!(server.parent_span_id, SpanId::INVALID);

    // The handler's CallContext names the server span.
    assert_eq!(
        handler_trace,
        hex(&server.span_context.trace_id().to_bytes())
    );
    assert_eq!(handler_span, hex(&server.span_context.span_id().to_bytes()));

    // OpenTelemetry's conventions for RPC and messaging.
    for (span, service, method) in [
        (client, &outer, "ask"),
        (server, &outer, "ask"),
        (nested, &inner, "double"),
        (nested_server, &inner, "double"),
    ] {
        assert_eq!(text(span, "rpc.system"), "amqp-fabric");
        assert_eq!(&text(span, "rpc.service"), service);
        assert_eq!(text(span, "rpc.method"), method);
        assert_eq!(text(span, "messaging.system"), "rabbitmq");
        assert_eq!(
            text(span, "messaging.destination.name"),
            format!("{domain}.api.{}::{method}", &service[domain.len() + 1..])
        );
        assert_eq!(text(span, "fabric.outcome"), "ok");
        assert_eq!(span.status, Status::Unset);
        assert!(attribute(span, "error.type").is_none());
        assert_eq!(
            text(span, "trace_id"),
            hex(&span.span_context.trace_id().to_bytes())
        );
        assert_eq!(
            text(span, "span_id"),
            hex(&span.span_context.span_id().to_bytes())
        );
    }

    // A call answered with the method's own error has an error status on both sides.
    for kind in [SpanKind::Client, SpanKind::Server] {
        let failed = spans
            .iter()
            .find(|s| s.name == format!("{outer}/refuse") && s.span_kind == kind)
            .unwrap_or_else(|| panic!("the {kind:?} span of refuse"));
        assert!(
            matches!(failed.status, Status::Error { .. }),
            "{:?}",
            failed.status
        );
        assert_eq!(text(failed, "error.type"), "error");
        assert_eq!(text(failed, "fabric.outcome"), "error");
        assert_ne!(failed.parent_span_id, SpanId::INVALID);
    }
    drop(services);
}

#[test]
fn tracing_events_in_a_handler_reach_the_remote_log_with_its_trace() {
    let pipeline = pipeline();
    let (sender, records) = mpsc::channel::<LogRecord>();
    let _tail = pipeline
        .log_fabric
        .subscribe_logs(&LogFilter::new(), move |record| {
            let _ = sender.send(record);
        })
        .expect("tail the logs");
    let domain = support::unique_domain("tracing-log");
    let services = services(&domain);

    assert_eq!(services.client.ask(5).expect("ask"), 10);
    let (trace_id, span_id) = services
        .seen
        .recv_timeout(ARRIVAL)
        .expect("the handler ran");
    assert!(pipeline.logger.flush_within(ARRIVAL));

    // Other tests' handlers log too: wait for this one's record.
    let record = loop {
        let record = records
            .recv_timeout(ARRIVAL)
            .expect("the handler's record arrives");
        if record.trace_id() == Some(trace_id.as_str()) {
            break record;
        }
    };
    assert_eq!(record.message(), "asked x=5");
    assert_eq!(record.span_id(), Some(span_id.as_str()));
    assert_eq!(record.rust_level(), Some(log::Level::Info));
    assert_eq!(record.target(), Some("tracing"));
    assert!(record
        .file()
        .is_some_and(|file| file.ends_with("tests/tracing.rs")));
    assert!(record.line().is_some());
}

#[test]
fn a_call_from_a_thread_attached_to_a_handler_is_a_child_of_its_server_span() {
    pipeline();
    let domain = support::unique_domain("tracing-attach");
    let services = services(&domain);
    let user = tracing::info_span!("user.request");
    let trace = user.context().span().span_context().trace_id();
    assert_eq!(
        user.in_scope(|| services.client.ask_from_thread(4))
            .expect("ask_from_thread"),
        8
    );
    drop(user);

    let spans = spans_of(trace);
    let outer = format!("{domain}.outer.o1/ask_from_thread");
    let inner = format!("{domain}.inner.i1/double");
    let find = |name: &str, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_kind == kind)
            .unwrap_or_else(|| panic!("the {kind:?} span {name}"))
    };
    let server = find(&outer, SpanKind::Server);
    let nested = find(&inner, SpanKind::Client);
    let nested_server = find(&inner, SpanKind::Server);
    assert_eq!(nested.parent_span_id, server.span_context.span_id());
    assert_eq!(nested_server.parent_span_id, nested.span_context.span_id());
}

#[test]
fn an_event_published_in_a_user_span_continues_its_trace() {
    pipeline();
    let domain = support::unique_domain("tracing-event");
    let fabric = support::connect(&domain, "publisher", "p1");
    let (sender, events) = mpsc::channel();
    let _subscription = fabric
        .subscribe_events("tracing-test", "#", move |event| {
            let _ = sender.send(event);
        })
        .expect("subscribe to events");

    let user = tracing::info_span!("user.publish");
    let ids = user.context().span().span_context().clone();
    user.in_scope(|| {
        fabric
            .publish_event("thing.happened", &1)
            .expect("publish")
            .wait()
            .expect("confirmed")
    });
    let event = events.recv_timeout(ARRIVAL).expect("the event arrives");
    let trace = hex(&ids.trace_id().to_bytes());
    assert_eq!(event.trace_id(), Some(trace.as_str()));
    assert_eq!(
        event.headers().get_str("traceparent"),
        Some(format!("00-{trace}-{}-01", hex(&ids.span_id().to_bytes())).as_str())
    );
}
