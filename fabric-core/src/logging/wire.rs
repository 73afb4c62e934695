//! What a log record looks like on the broker, in both directions.
//!
//! amqp-fabric's `AmqpHandler` publishes each record to `{domain}.log.records` (a durable
//! headers exchange) with routing key `""`, the three headers `service_id`, `service_type` and
//! `level_name`, and the message as a JSON string: `json.dumps(record.getMessage())`. No
//! content type, no delivery mode. fabric sends exactly that, and adds what a Rust record has
//! beside it as extra headers that Python consumers may ignore:
//!
//! | header | value | when |
//! | --- | --- | --- |
//! | `service_id`, `service_type` | the publisher's address | always (amqp-fabric's) |
//! | `level_name` | `DEBUG`, `INFO`, `WARNING`, `ERROR` (amqp-fabric's; Rust's `Trace` sends `DEBUG`) | always (amqp-fabric's) |
//! | `rust_level` | Rust's own level: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` | Rust records |
//! | `target` | the record's target | Rust records |
//! | `module`, `file` | where the record was made | when the record knows |
//! | `line` | its line, an integer | when the record knows |
//! | `dropped` | records dropped just before this one, an integer > 0 | after a drop |
//! | `traceparent`, `trace_id`, `span_id` | the trace and span of the call being handled (W3C's `traceparent`, and its ids alone so a tail can bind on `trace_id`) | every record: inside a handler, that call's span; else a new trace (none on a Python peer's record) |
//!
//! The AMQP `timestamp` property carries the time the record was made, in whole seconds.
//! When `dropped` is present the message also ends with a note, so that a consumer which
//! knows only amqp-fabric's headers still learns of the gap; fabric's decoder takes the note
//! off again.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use amiquip::{AmqpProperties, AmqpValue, ExchangeType, FieldTable};

use crate::broker::consumer::Incoming;
use crate::broker::topology::Declaration;
use crate::rpc::CallContext;
use crate::stream::Headers;
use crate::trace::TraceContext;

use super::{LogLevel, LogRecord};

/// The header naming the publisher's service id (amqp-fabric's).
pub(crate) const SERVICE_ID: &str = "service_id";
/// The header naming the publisher's service type (amqp-fabric's).
pub(crate) const SERVICE_TYPE: &str = "service_type";
/// The header with Python's level name (amqp-fabric's).
pub(crate) const LEVEL_NAME: &str = "level_name";
/// Rust's own level, which tells a `Trace` record from a `Debug` one.
const RUST_LEVEL: &str = "rust_level";
const TARGET: &str = "target";
const MODULE: &str = "module";
const FILE: &str = "file";
const LINE: &str = "line";
/// How many records were dropped just before this one.
const DROPPED: &str = "dropped";
/// The trace of the call being handled when the record was made, alone.
pub(crate) const TRACE_ID: &str = "trace_id";
/// The span of that call, alone.
const SPAN_ID: &str = "span_id";

/// The log exchange `exchange`: headers, durable, as amqp-fabric's handler declares it. Any
/// other flag would make the broker refuse one side's declaration with PRECONDITION_FAILED.
pub(crate) fn exchange_declaration(exchange: &str) -> Declaration {
    Declaration::Exchange {
        name: exchange.to_owned(),
        kind: ExchangeType::Headers,
        durable: true,
        auto_delete: false,
    }
}

/// Python's level name for a Rust level. Rust has no level above `Error`, so a Rust service
/// never sends `CRITICAL`; Python has none below `DEBUG`, so `Trace` goes out as `DEBUG`
/// (with `rust_level` = `TRACE` beside it).
pub(crate) fn level_name(level: log::Level) -> &'static str {
    LogLevel::from(level).name()
}

/// One record as the application logged it, owned, waiting to be shipped.
#[derive(Debug)]
pub(crate) struct Entry {
    pub level: log::Level,
    pub target: String,
    pub module: Option<Cow<'static, str>>,
    pub file: Option<Cow<'static, str>>,
    pub line: Option<u32>,
    pub message: String,
    pub time: SystemTime,
    /// The span the record was made in: the call being handled on the logging thread, or
    /// else a new trace of its own.
    pub trace: TraceContext,
}

impl Entry {
    /// Copies what a record says; formats its message.
    pub(crate) fn from_record(record: &log::Record<'_>) -> Entry {
        let args = record.args();
        Entry {
            level: record.level(),
            target: record.target().to_owned(),
            module: owned_or_static(record.module_path_static(), record.module_path()),
            file: owned_or_static(record.file_static(), record.file()),
            line: record.line(),
            message: match args.as_str() {
                Some(text) => text.to_owned(),
                None => args.to_string(),
            },
            time: SystemTime::now(),
            trace: CallContext::outgoing_trace(),
        }
    }
}

/// Borrows a `'static` string (the usual case for modules and files), copies any other.
fn owned_or_static(
    static_str: Option<&'static str>,
    any: Option<&str>,
) -> Option<Cow<'static, str>> {
    match static_str {
        Some(s) => Some(Cow::Borrowed(s)),
        None => any.map(|s| Cow::Owned(s.to_owned())),
    }
}

/// The note appended to the message of a record sent after `dropped` others were dropped.
fn dropped_note(dropped: u64) -> String {
    format!(" [{dropped} earlier log records dropped]")
}

/// Who publishes: the headers every record of one logger carries.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    pub service_type: String,
    pub service_id: String,
}

/// The body and properties of one record, `dropped` being the number of records dropped
/// just before it (0 for none).
pub(crate) fn encode(who: &Publisher, entry: &Entry, dropped: u64) -> (Vec<u8>, AmqpProperties) {
    let text = |s: &str| AmqpValue::LongString(s.to_owned());
    let mut headers = FieldTable::default();
    headers.insert(SERVICE_ID.to_owned(), text(&who.service_id));
    headers.insert(SERVICE_TYPE.to_owned(), text(&who.service_type));
    headers.insert(LEVEL_NAME.to_owned(), text(level_name(entry.level)));
    headers.insert(RUST_LEVEL.to_owned(), text(entry.level.as_str()));
    headers.insert(TARGET.to_owned(), text(&entry.target));
    if let Some(module) = &entry.module {
        headers.insert(MODULE.to_owned(), text(module));
    }
    if let Some(file) = &entry.file {
        headers.insert(FILE.to_owned(), text(file));
    }
    if let Some(line) = entry.line {
        headers.insert(LINE.to_owned(), AmqpValue::LongLongInt(line.into()));
    }
    entry.trace.write_to(&mut headers);
    headers.insert(TRACE_ID.to_owned(), text(&entry.trace.trace_id_hex()));
    headers.insert(SPAN_ID.to_owned(), text(&entry.trace.span_id_hex()));
    let body = if dropped > 0 {
        headers.insert(
            DROPPED.to_owned(),
            AmqpValue::LongLongInt(i64::try_from(dropped).unwrap_or(i64::MAX)),
        );
        json_string(&format!("{}{}", entry.message, dropped_note(dropped)))
    } else {
        json_string(&entry.message)
    };
    let seconds = entry
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let properties = AmqpProperties::default()
        .with_headers(headers)
        .with_timestamp(seconds);
    (body, properties)
}

/// A string as a JSON document, as Python's `json.dumps(str)` makes it (non-ASCII is kept as
/// UTF-8 rather than escaped; both are the same JSON).
fn json_string(text: &str) -> Vec<u8> {
    // Serializing a `str` cannot fail.
    serde_json::to_vec(text).unwrap_or_default()
}

/// Reads a record sent by fabric or by amqp-fabric's Python handler (which sends only the
/// three amqp-fabric headers), or by anything else that publishes to the exchange.
pub(crate) fn decode(incoming: Incoming) -> LogRecord {
    let Incoming {
        body, properties, ..
    } = incoming;
    let headers = properties
        .headers()
        .as_ref()
        .map(Headers::from_table)
        .unwrap_or_default();
    let text = |name: &str| headers.get_str(name).map(str::to_owned);
    let integer = |name: &str| match headers.get(name) {
        Some(crate::stream::HeaderValue::Int(n)) => Some(*n),
        Some(crate::stream::HeaderValue::Str(s)) => s.parse().ok(),
        _ => None,
    };
    let level_name = text(LEVEL_NAME).unwrap_or_default();
    let dropped = integer(DROPPED)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let mut message = message_of(&body);
    if dropped > 0 {
        if let Some(original) = message.strip_suffix(&dropped_note(dropped)) {
            message.truncate(original.len());
        }
    }
    LogRecord {
        level: LogLevel::from_name(&level_name),
        rust_level: headers
            .get_str(RUST_LEVEL)
            .and_then(|name| name.parse().ok()),
        level_name,
        service_type: text(SERVICE_TYPE),
        service_id: text(SERVICE_ID),
        message,
        target: text(TARGET),
        module: text(MODULE),
        file: text(FILE),
        line: integer(LINE).and_then(|n| u32::try_from(n).ok()),
        trace_id: text(TRACE_ID),
        span_id: text(SPAN_ID),
        dropped,
        timestamp: properties
            .timestamp()
            .map(|seconds| UNIX_EPOCH + Duration::from_secs(seconds)),
        headers,
        body,
    }
}

/// The message in a body: a JSON string as amqp-fabric sends it; any other JSON value as its
/// JSON text; anything else as (lossy) UTF-8 text.
fn message_of(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::String(message)) => message,
        Ok(other) => other.to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(level: log::Level, message: &str) -> Entry {
        Entry {
            level,
            target: "my_app::orders".to_owned(),
            module: Some(Cow::Borrowed("my_app::orders")),
            file: Some(Cow::Borrowed("src/orders.rs")),
            line: Some(42),
            message: message.to_owned(),
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            trace: TraceContext::root(),
        }
    }

    #[test]
    fn a_record_made_in_a_handler_carries_its_trace() {
        let mut made = entry(log::Level::Info, "in a handler");
        let trace = crate::trace::TraceContext::root();
        made.trace = trace.clone();
        let (body, properties) = encode(&who(), &made, 0);
        let record = round_trip(body, properties);
        assert_eq!(record.trace_id(), Some(trace.trace_id_hex().as_str()));
        assert_eq!(record.span_id(), Some(trace.span_id_hex().as_str()));
        assert_eq!(
            record.headers().get_str("traceparent"),
            Some(trace.traceparent().as_str())
        );
        // Outside a handler a record starts a trace of its own.
        let outside = entry(log::Level::Info, "outside");
        let (body, properties) = encode(&who(), &outside, 0);
        let record = round_trip(body, properties);
        assert_eq!(
            record.trace_id(),
            Some(outside.trace.trace_id_hex().as_str())
        );
        assert_ne!(record.trace_id(), Some(trace.trace_id_hex().as_str()));
    }

    fn who() -> Publisher {
        Publisher {
            service_type: "shop".to_owned(),
            service_id: "s1".to_owned(),
        }
    }

    fn round_trip(body: Vec<u8>, properties: AmqpProperties) -> LogRecord {
        decode(Incoming {
            body,
            properties,
            routing_key: String::new(),
            redelivered: false,
        })
    }

    #[test]
    fn levels_take_python_names() {
        assert_eq!(level_name(log::Level::Error), "ERROR");
        assert_eq!(level_name(log::Level::Warn), "WARNING");
        assert_eq!(level_name(log::Level::Info), "INFO");
        assert_eq!(level_name(log::Level::Debug), "DEBUG");
        assert_eq!(level_name(log::Level::Trace), "DEBUG");
    }

    #[test]
    fn a_record_has_amqp_fabric_headers_and_a_json_string_body() {
        let (body, properties) = encode(&who(), &entry(log::Level::Warn, "low \"stock\" é"), 0);
        assert_eq!(
            serde_json::from_slice::<String>(&body).unwrap(),
            "low \"stock\" é"
        );
        let headers = properties.headers().as_ref().unwrap();
        let text = |name: &str| match headers.get(name) {
            Some(AmqpValue::LongString(s)) => s.as_str(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(text("service_id"), "s1");
        assert_eq!(text("service_type"), "shop");
        assert_eq!(text("level_name"), "WARNING");
        assert_eq!(text("rust_level"), "WARN");
        assert_eq!(text("target"), "my_app::orders");
        assert_eq!(headers.get("line"), Some(&AmqpValue::LongLongInt(42)));
        assert!(headers.get("dropped").is_none());
        assert!(properties.content_type().is_none());
        assert_eq!(*properties.timestamp(), Some(1_700_000_000));

        let record = round_trip(body, properties);
        assert_eq!(record.level(), Some(LogLevel::Warning));
        assert_eq!(record.rust_level(), Some(log::Level::Warn));
        assert_eq!(record.message(), "low \"stock\" é");
        assert_eq!(record.service_id(), Some("s1"));
        assert_eq!(record.file(), Some("src/orders.rs"));
        assert_eq!(record.line(), Some(42));
        assert_eq!(record.dropped(), 0);
    }

    #[test]
    fn a_drop_is_told_in_a_header_and_in_the_message() {
        let (body, properties) = encode(&who(), &entry(log::Level::Trace, "next"), 7);
        let on_wire: String = serde_json::from_slice(&body).unwrap();
        assert_eq!(on_wire, "next [7 earlier log records dropped]");
        let record = round_trip(body, properties);
        assert_eq!(record.dropped(), 7);
        assert_eq!(record.message(), "next");
        assert_eq!(record.level(), Some(LogLevel::Debug));
        assert_eq!(record.rust_level(), Some(log::Level::Trace));
    }

    #[test]
    fn a_python_record_decodes() {
        let headers = crate::broker::topology::string_table([
            ("service_id", "p1"),
            ("service_type", "py"),
            ("level_name", "CRITICAL"),
        ]);
        let record = round_trip(
            br#""disk \u00e9 full""#.to_vec(),
            AmqpProperties::default().with_headers(headers),
        );
        assert_eq!(record.level(), Some(LogLevel::Critical));
        assert_eq!(record.message(), "disk é full");
        assert_eq!(record.target(), None);
        assert_eq!(record.rust_level(), None);
        assert_eq!(record.timestamp(), None);
    }

    #[test]
    fn odd_bodies_still_give_a_message() {
        assert_eq!(message_of(b"plain text"), "plain text");
        assert_eq!(message_of(br#"{"a":1}"#), r#"{"a":1}"#);
        let record = round_trip(b"x".to_vec(), AmqpProperties::default());
        assert_eq!(record.level(), None);
        assert_eq!(record.level_name(), "");
    }
}
