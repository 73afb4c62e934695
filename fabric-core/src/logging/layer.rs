//! `tracing` events to the remote log (feature `tracing`): a `tracing_subscriber` layer that
//! hands each event to a [`RemoteLogger`] as a `log` record.

use std::fmt::{self, Write as _};

use log::Log;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::RemoteLogger;

/// A [`tracing_subscriber::Layer`] that sends `tracing` events to the domain's log through a
/// [`RemoteLogger`], as the logger sends `log` records: same format, same level and target
/// filters, same bounded queue that never blocks the application. Made by
/// [`RemoteLogger::tracing_layer`] (feature `tracing`).
///
/// An event becomes a record of the same level (`TRACE` ... `ERROR`), target, module, file and
/// line; its message is the event's `message` field followed by its other fields as
/// ` name=value`. An event inside a fabric handler carries the handler's trace, as a `log`
/// record there does; elsewhere, with the `opentelemetry` feature and an OpenTelemetry layer,
/// the trace of the current span. Spans themselves are not logged.
///
/// ```no_run
/// # fn main() -> fabric_core::Result<()> {
/// use fabric_core::{Fabric, FabricConfig, RemoteLogger};
/// use log::LevelFilter;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "billing", "b1"))?;
/// let logger = RemoteLogger::builder(&fabric).level(LevelFilter::Info).build()?;
/// let subscriber = tracing_subscriber::registry().with(logger.tracing_layer());
/// tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
/// tracing::info!(invoice = 1234, "invoice sent");
/// logger.flush_within(std::time::Duration::from_secs(5));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteLogLayer {
    logger: RemoteLogger,
}

impl RemoteLogger {
    /// A `tracing` layer that sends events to the remote log through this logger (a clone of
    /// it: they share one queue): see [`RemoteLogLayer`].
    pub fn tracing_layer(&self) -> RemoteLogLayer {
        RemoteLogLayer {
            logger: self.clone(),
        }
    }
}

impl<S: Subscriber> Layer<S> for RemoteLogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => log::Level::Error,
            Level::WARN => log::Level::Warn,
            Level::INFO => log::Level::Info,
            Level::DEBUG => log::Level::Debug,
            Level::TRACE => log::Level::Trace,
        };
        let metadata = log::Metadata::builder()
            .level(level)
            .target(meta.target())
            .build();
        if !self.logger.enabled(&metadata) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let fields = if message.text.is_empty() {
            message.fields.trim_start()
        } else {
            &message.fields
        };
        self.logger.log(
            &log::Record::builder()
                .metadata(metadata)
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .args(format_args!("{}{fields}", message.text))
                .build(),
        );
    }
}

/// An event's fields as text: the message, and the others as ` name=value`.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
