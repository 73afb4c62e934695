//! W3C Trace Context: the trace a message belongs to and the span that sent it, carried as the
//! `traceparent` header (and `tracestate`, when a peer set one) on every call, reply, event,
//! data message and log record, so one request can be followed across services.
//!
//! `traceparent` is `00-{trace id: 32 hex}-{parent span id: 16 hex}-{flags: 2 hex}`
//! (<https://www.w3.org/TR/trace-context/>). fabric makes its own ids (random, from the OS's
//! seed), or adopts those of an OpenTelemetry span when the `tracing` feature and an
//! OpenTelemetry layer are installed.

use amiquip::{AmqpValue, FieldTable};

use crate::token::random;

/// The header that carries the trace and the sending span.
const TRACEPARENT: &str = "traceparent";
/// The header that carries vendors' trace state, passed on unchanged.
const TRACESTATE: &str = "tracestate";

/// The trace a piece of work belongs to, and its own span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    /// The span this one is a child of, when it has one.
    parent: Option<[u8; 8]>,
    sampled: bool,
    /// `tracestate`, as received.
    state: Option<String>,
}

impl TraceContext {
    /// The first span of a new trace.
    pub(crate) fn root() -> TraceContext {
        let (high, low) = (random(), random());
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&high.to_be_bytes());
        trace_id[8..].copy_from_slice(&low.to_be_bytes());
        TraceContext {
            trace_id,
            span_id: span_id(),
            parent: None,
            sampled: true,
            state: None,
        }
    }

    /// The span a message announces (its `traceparent` parent id is that span), continued:
    /// what a receiver works in. `None` for a header that is not W3C's.
    pub(crate) fn continue_from(
        traceparent: &str,
        tracestate: Option<&str>,
    ) -> Option<TraceContext> {
        let Traceparent {
            trace_id,
            parent_id,
            flags,
            ..
        } = Traceparent::parse(traceparent)?;
        Some(TraceContext {
            trace_id,
            span_id: span_id(),
            parent: Some(parent_id),
            sampled: flags & 1 == 1,
            state: tracestate.map(str::to_owned),
        })
    }

    /// The span a message's `headers` announce, continued: what its receiver works in; a new
    /// trace when they announce none (a Python peer's message).
    pub(crate) fn received(headers: Option<&FieldTable>) -> TraceContext {
        let text = |name: &str| match headers.and_then(|h| h.get(name)) {
            Some(AmqpValue::LongString(text)) => Some(text.as_str()),
            _ => None,
        };
        text(TRACEPARENT)
            .and_then(|parent| TraceContext::continue_from(parent, text(TRACESTATE)))
            .unwrap_or_else(TraceContext::root)
    }

    /// What a receiver of a message sent from this span works in, as [`received`](Self::received)
    /// makes it from the message's headers: for a call that never crosses the wire.
    pub(crate) fn child(&self) -> TraceContext {
        TraceContext::continue_from(&self.traceparent(), self.state.as_deref())
            .unwrap_or_else(TraceContext::root)
    }

    /// Writes this span, as the sender of a message, into its `headers`: `traceparent`, and
    /// `tracestate` when there is one.
    pub(crate) fn write_to(&self, headers: &mut FieldTable) {
        headers.insert(
            TRACEPARENT.to_owned(),
            AmqpValue::LongString(self.traceparent()),
        );
        if let Some(state) = &self.state {
            headers.insert(TRACESTATE.to_owned(), AmqpValue::LongString(state.clone()));
        }
    }

    /// This span as another's parent: the `traceparent` a message it sends carries.
    pub(crate) fn traceparent(&self) -> String {
        let mut text = String::with_capacity(55);
        text.push_str("00-");
        push_hex(&mut text, &self.trace_id);
        text.push('-');
        push_hex(&mut text, &self.span_id);
        text.push_str(if self.sampled { "-01" } else { "-00" });
        text
    }

    #[cfg(test)]
    fn tracestate(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// A span with these ids, for the OpenTelemetry bridge (`observe/spans.rs`), which takes
    /// them from an OpenTelemetry span.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn from_parts(
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent: Option<[u8; 8]>,
        sampled: bool,
        state: Option<String>,
    ) -> TraceContext {
        TraceContext {
            trace_id,
            span_id,
            parent,
            sampled,
            state,
        }
    }

    /// The trace id, for the `tracing` bridge.
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id, for the `tracing` bridge.
    #[cfg(feature = "tracing")]
    pub(crate) fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The parent span's id, for the OpenTelemetry bridge.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn parent_id(&self) -> Option<[u8; 8]> {
        self.parent
    }

    /// Whether the trace is sampled, for the OpenTelemetry bridge.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn sampled(&self) -> bool {
        self.sampled
    }

    /// `tracestate`, for the OpenTelemetry bridge.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The trace id, 32 lowercase hex digits.
    pub(crate) fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id, 16 lowercase hex digits.
    pub(crate) fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The parent span's id, 16 lowercase hex digits.
    pub(crate) fn parent_id_hex(&self) -> Option<String> {
        self.parent.as_ref().map(|id| hex(id))
    }
}

/// A `traceparent` header taken apart: `00-{trace id}-{parent span id}-{flags}`.
struct Traceparent<'a> {
    /// The trace id as written.
    trace_text: &'a str,
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl<'a> Traceparent<'a> {
    /// `None` for a header that is not W3C's.
    fn parse(traceparent: &'a str) -> Option<Traceparent<'a>> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; a later version may append more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace)?;
        let parent_id: [u8; 8] = hex_bytes(parent)?;
        let [flags]: [u8; 1] = hex_bytes(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Traceparent {
            trace_text: trace,
            trace_id,
            parent_id,
            flags,
        })
    }
}

/// The trace id a `traceparent` header names, as written (32 lowercase hex digits); `None`
/// for a header that is not W3C's.
pub(crate) fn trace_id_of(traceparent: &str) -> Option<&str> {
    Traceparent::parse(traceparent).map(|parsed| parsed.trace_text)
}

/// A fresh span id: random, never all zeros.
fn span_id() -> [u8; 8] {
    loop {
        let id = random();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    push_hex(&mut text, bytes);
    text
}

/// Appends `bytes` as lowercase hex digits: on every message sent, so no formatter.
fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits (W3C forbids upper case).
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut bytes = [0; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_is_continued_as_a_child() {
        let root = TraceContext::root();
        let header = root.traceparent();
        assert_eq!(header.len(), 55, "{header}");
        assert!(
            header.starts_with("00-") && header.ends_with("-01"),
            "{header}"
        );
        let received = TraceContext::continue_from(&header, Some("vendor=x")).unwrap();
        assert_eq!(received.trace_id_hex(), root.trace_id_hex());
        assert_eq!(received.parent_id_hex(), Some(root.span_id_hex()));
        assert_ne!(received.span_id_hex(), root.span_id_hex());
        assert_eq!(received.tracestate(), Some("vendor=x"));
    }

    #[test]
    fn the_w3c_example_parses_and_bad_headers_do_not() {
        let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::continue_from(example, None).unwrap();
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id_hex().as_deref(), Some("00f067aa0ba902b7"));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceContext::continue_from(bad, None).is_none(), "{bad}");
        }
        // A later version may append fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x";
        assert!(TraceContext::continue_from(later, None).is_some());
    }

    #[test]
    fn ids_differ() {
        let (a, b) = (TraceContext::root(), TraceContext::root());
        assert_ne!(a.trace_id_hex(), b.trace_id_hex());
        assert_ne!(a.span_id_hex(), b.span_id_hex());
    }
}
