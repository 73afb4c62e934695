//! The `tracing` bridge with real subscribers: a `Multiplier` server and its client in one
//! process, with three `tracing` layers installed:
//!
//! - `tracing_subscriber::fmt`, which prints each event, and each span when it closes, to
//!   stdout: `fabric.client` and `fabric.server` spans with their `rpc.*` and `messaging.*`
//!   fields;
//! - `tracing_opentelemetry` over an OpenTelemetry SDK whose exporter prints every finished
//!   span: the client span is a child of the `request` span, the server span a child of the
//!   client span (its parent came over the broker, in `traceparent`), all in one trace;
//! - fabric's `RemoteLogLayer`, which sends the handler's `tracing::info!` to the domain's
//!   log, where this example tails it back, tagged with the handler's trace id.
//!
//! Usage: `traced [DOMAIN]` (default `my_project`); `FABRIC_URL` names the broker.

use std::sync::mpsc;
use std::time::Duration;

use fabric_core::{CallContext, Fabric, FabricConfig, LogFilter, RemoteLogger};
use fabric_examples::{
    broker_url, domain_arg, DivError, Multiplier, MultiplierClient, MultiplierServer,
};
use log::LevelFilter;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;

/// How long the example waits for its own log record to come back from the broker.
const LOG_ARRIVAL: Duration = Duration::from_secs(10);

struct Calc;

impl Multiplier for Calc {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        // An event inside the handler: a child of the server span, and a remote log record
        // that carries the call's trace.
        let trace_id = CallContext::current().map(|call| call.trace_id().to_owned());
        tracing::info!(x, y, trace_id, "multiplying");
        x.wrapping_mul(y)
    }

    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        match (x.checked_div(y), y) {
            (Some(quotient), _) => Ok(quotient),
            (None, 0) => Err(DivError::DivisionByZero),
            (None, _) => Err(DivError::Overflow),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let server_fabric = Fabric::connect(FabricConfig::new(
        &broker_url(),
        &domain,
        "server_app",
        "traced",
    ))?;
    let logger = RemoteLogger::builder(&server_fabric)
        .level(LevelFilter::Info)
        .build()?;

    // Spans go to stdout twice: as `fmt` prints them, and as OpenTelemetry exports them.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_span_events(FmtSpan::CLOSE),
        )
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("traced-example")))
        .with(logger.tracing_layer());
    tracing::subscriber::set_global_default(subscriber)?;

    let server = MultiplierServer::new(Calc).serve(&server_fabric)?;
    let client_fabric = Fabric::connect(FabricConfig::new(
        &broker_url(),
        &domain,
        "client_app",
        "traced_client",
    ))?;
    let client = MultiplierClient::connect(&client_fabric, &domain, "server_app", "traced")?;

    // The user's own span: the calls made in it continue its trace.
    let request = tracing::info_span!("request", user = "ada");
    let trace_id = request
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    println!("== the request's trace: {trace_id}");

    // Tail the domain's log for this trace only, before anything is logged in it.
    let (records, arrived) = mpsc::channel();
    let _tail =
        client_fabric.subscribe_logs(&LogFilter::new().trace_id(&trace_id), move |record| {
            let _ = records.send(record);
        })?;

    request.in_scope(|| -> fabric_core::Result<()> {
        println!("== multiply(6, 7) = {}", client.multiply(6, 7)?);
        // The service's own error: both spans get an error status and `error.type = error`.
        println!("== divide(1, 0) = {:?}", client.divide(1, 0)?);
        Ok(())
    })?;
    drop(request);

    logger.flush_within(LOG_ARRIVAL);
    match arrived.recv_timeout(LOG_ARRIVAL) {
        Ok(record) => println!(
            "== remote log: {} {} (trace {}, span {})",
            record.level_name(),
            record.message(),
            record.trace_id().unwrap_or("-"),
            record.span_id().unwrap_or("-"),
        ),
        Err(_) => println!("== remote log: no record within {LOG_ARRIVAL:?}"),
    }

    server.close()?;
    provider.shutdown()?;
    Ok(())
}
