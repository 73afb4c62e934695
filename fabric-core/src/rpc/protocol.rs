//! The RPC messages of amqp-fabric: properties of calls and replies, and error bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amiquip::{AmqpProperties, AmqpValue, FieldTable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::trace::TraceContext;

/// The `type` property of a call.
pub(crate) const TYPE_CALL: &str = "call";
/// The `type` property of a successful reply.
pub(crate) const TYPE_RESULT: &str = "result";
/// The `type` property of a failed reply.
pub(crate) const TYPE_ERROR: &str = "error";
/// The method every server answers with `true`.
pub(crate) const HEALTH_CHECK: &str = "health_check";

/// The `type` of the error replies a fabric server sends for failures of its own (a service's
/// own errors are named after their type, see [`Reply::error`](crate::Reply::error)).
pub(crate) mod error_kind {
    /// The handler panicked.
    pub const PANIC: &str = "panic";
    /// The arguments do not fit the method (missing, unexpected, of the wrong type) or the
    /// body does not decode: the `type` a Python server sends then (a built-in exception
    /// has no module in amqp-fabric's error bodies), so a Python caller raises `TypeError`
    /// for it too.
    pub const BAD_ARGUMENTS: &str = "TypeError";
    /// The same, as a Python peer may also name it.
    pub const BAD_ARGUMENTS_QUALIFIED: &str = "builtins.TypeError";
    /// The message is not a call fabric can read: an unknown content type, or a `type`
    /// other than `call`.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The service has no such method.
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    /// The result could not be encoded.
    pub const INTERNAL: &str = "internal";
    /// The call's deadline had passed when a worker took it: it was not run. Its caller has
    /// given up by then (or gets a timeout now).
    pub const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
}

/// The header with a call's deadline: when its caller gives up, in milliseconds since the
/// Unix epoch. Python peers ignore it.
pub(crate) const DEADLINE: &str = "fabric-deadline-ms";

/// Properties of a call, as aio-pika's RPC pattern sends them, with the caller's trace and
/// deadline: it gives up `timeout` from now.
pub(crate) fn call_properties(
    correlation_id: String,
    reply_to: &str,
    codec: Codec,
    timeout: Duration,
    trace: &TraceContext,
) -> AmqpProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "From".to_owned(),
        AmqpValue::LongString(reply_to.to_owned()),
    );
    trace.write_to(&mut headers);
    let deadline = SystemTime::now() + timeout;
    headers.insert(
        DEADLINE.to_owned(),
        AmqpValue::LongLongInt(unix_millis(deadline)),
    );
    // The broker drops a call still queued when its caller has given up.
    let expiration = timeout.as_millis().max(1).to_string();
    AmqpProperties::default()
        .with_content_type(codec.content_type().to_owned())
        .with_type_(TYPE_CALL.to_owned())
        .with_correlation_id(correlation_id)
        .with_reply_to(reply_to.to_owned())
        .with_headers(headers)
        .with_priority(5)
        .with_delivery_mode(1)
        .with_expiration(expiration)
}

/// Properties of a reply, sent from the span `trace`.
pub(crate) fn reply_properties(
    correlation_id: Option<String>,
    kind: &str,
    content_type: &str,
    trace: &TraceContext,
) -> AmqpProperties {
    let mut headers = FieldTable::default();
    trace.write_to(&mut headers);
    let properties = AmqpProperties::default()
        .with_content_type(content_type.to_owned())
        .with_type_(kind.to_owned())
        .with_headers(headers)
        .with_delivery_mode(1);
    match correlation_id {
        Some(id) => properties.with_correlation_id(id),
        None => properties,
    }
}

/// A call's deadline as this process's clock tells it: `Ok(None)` without one (a Python
/// caller sends none), `Err(())` when it has passed.
pub(crate) fn deadline_of(properties: &AmqpProperties) -> Result<Option<Instant>, ()> {
    let deadline = match properties.headers().as_ref().and_then(|h| h.get(DEADLINE)) {
        Some(AmqpValue::LongLongInt(millis)) => *millis,
        _ => return Ok(None),
    };
    let left = deadline - unix_millis(SystemTime::now());
    if left <= 0 {
        return Err(());
    }
    Ok(Some(
        Instant::now() + Duration::from_millis(left.unsigned_abs()),
    ))
}

/// Milliseconds since the Unix epoch; 0 for a clock before it.
fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

/// An error reply as JSON, amqp-fabric's shape:
/// `{"error": {"type": ..., "message": ..., "args": [...], "value": ...}}`. `value` is
/// fabric's own field, the serialized error of a method that returned `Err`; Python peers
/// ignore it.
#[derive(Serialize)]
struct JsonErrorOut<'a, E: ?Sized> {
    error: JsonDetailOut<'a, E>,
}

#[derive(Serialize)]
struct JsonDetailOut<'a, E: ?Sized> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    /// What a Python exception's `args` would hold: its message.
    args: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a E>,
}

#[derive(Deserialize)]
struct JsonErrorIn {
    error: JsonDetailIn,
}

#[derive(Deserialize)]
struct JsonDetailIn {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    /// Present (even as `null`, which a unit struct is) or absent.
    #[serde(default, deserialize_with = "present")]
    value: Option<serde_json::Value>,
}

/// `Some` for a field that is there, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

/// Encodes an error reply body for a failure of fabric's own (no value). Always JSON, as
/// amqp-fabric writes them, whatever the call's codec.
pub(crate) fn encode_error(kind: &str, message: &str) -> Vec<u8> {
    let body = JsonErrorOut::<()> {
        error: JsonDetailOut {
            kind,
            message,
            args: [message],
            value: None,
        },
    };
    serde_json::to_vec(&body).expect("an error body of strings always encodes")
}

/// Encodes the error reply of a method that returned `Err(value)`, in the call's codec: in
/// JSON amqp-fabric's shape with the value beside; in bincode the type, the message and the
/// value, in that order (only fabric peers call in bincode).
pub(crate) fn encode_service_error<E: Serialize + ?Sized>(
    codec: Codec,
    kind: &str,
    message: &str,
    value: &E,
) -> Result<Vec<u8>, String> {
    match codec {
        Codec::Json => serde_json::to_vec(&JsonErrorOut {
            error: JsonDetailOut {
                kind,
                message,
                args: [message],
                value: Some(value),
            },
        })
        .map_err(|e| e.to_string()),
        Codec::Bincode => bincode::serialize(&(kind, message, value)).map_err(|e| e.to_string()),
    }
}

/// What an error reply says, whoever sent it: its type and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: String,
    pub message: String,
}

/// Reads the type and message of an error reply in `codec` (`None`: a content type fabric
/// does not know, read as JSON if it is, else kept whole). A body that is not an error body
/// is kept whole as the message, so nothing the server said is lost.
pub(crate) fn decode_error(codec: Option<Codec>, body: &[u8]) -> Failure {
    let decoded = match codec {
        Some(Codec::Bincode) => bincode::deserialize::<(String, String)>(body).ok(),
        Some(Codec::Json) | None => serde_json::from_slice::<JsonErrorIn>(body)
            .ok()
            .map(|body| (body.error.kind, body.error.message)),
    };
    match decoded {
        Some((kind, message)) => Failure { kind, message },
        None => Failure {
            kind: "unknown".to_owned(),
            message: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

/// Reads the value of an error reply: `None` when it carries none (a failure of the server's
/// own, or a Python exception), else the value decoded as an `E`, or why it does not decode.
pub(crate) fn decode_error_value<E: DeserializeOwned>(
    codec: Option<Codec>,
    body: &[u8],
) -> Option<Result<E, String>> {
    match codec? {
        Codec::Json => {
            let value = serde_json::from_slice::<JsonErrorIn>(body)
                .ok()?
                .error
                .value?;
            Some(serde_json::from_value(value).map_err(|e| e.to_string()))
        }
        Codec::Bincode => {
            // A bincode error reply always carries a value; one that does not read as
            // (type, message, value) is not one.
            bincode::deserialize::<(String, String)>(body).ok()?;
            Some(
                bincode::deserialize::<(String, String, E)>(body)
                    .map(|(_, _, value)| value)
                    .map_err(|e| e.to_string()),
            )
        }
    }
}

/// Correlation ids unique across processes: a random prefix per process and a counter.
/// Cheaper than a UUID per call and as unique for the life of a reply queue.
#[derive(Debug)]
pub(crate) struct CorrelationIds {
    prefix: String,
    next: AtomicU64,
}

impl CorrelationIds {
    pub(crate) fn new() -> CorrelationIds {
        CorrelationIds {
            prefix: crate::token::unique_token(),
            next: AtomicU64::new(1),
        }
    }

    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_use_amqp_fabric_shape() {
        let body = encode_error("panic", "boom");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {"type": "panic", "message": "boom", "args": ["boom"]}})
        );
        let failure = decode_error(Some(Codec::Json), &body);
        assert_eq!(
            (failure.kind.as_str(), failure.message.as_str()),
            ("panic", "boom")
        );
        assert_eq!(decode_error_value::<String>(Some(Codec::Json), &body), None);
        let plain = decode_error(Some(Codec::Json), b"plain");
        assert_eq!(
            (plain.kind.as_str(), plain.message.as_str()),
            ("unknown", "plain")
        );
    }

    #[test]
    fn a_service_error_carries_its_value_in_both_codecs() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct NotFound;
        for codec in [Codec::Json, Codec::Bincode] {
            let body = encode_service_error(codec, "NotFound", "no such thing", &NotFound).unwrap();
            let failure = decode_error(Some(codec), &body);
            assert_eq!(failure.kind, "NotFound", "{codec:?}");
            assert_eq!(failure.message, "no such thing", "{codec:?}");
            // A unit struct is `null` in JSON, and still a value.
            assert_eq!(
                decode_error_value::<NotFound>(Some(codec), &body),
                Some(Ok(NotFound))
            );
            let wrong = decode_error_value::<Vec<u64>>(Some(codec), &body);
            assert!(matches!(wrong, Some(Err(_))), "{codec:?}: {wrong:?}");
        }
        let json = encode_service_error(Codec::Json, "E.V", "m", &5).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {"type": "E.V", "message": "m", "args": ["m"], "value": 5}})
        );
    }

    #[test]
    fn a_python_error_body_has_no_value() {
        let body = br#"{"error": {"type": "ZeroDivisionError", "message": "ZeroDivisionError('division by zero')", "args": ["division by zero"]}}"#;
        assert_eq!(decode_error(None, body).kind, "ZeroDivisionError");
        assert_eq!(decode_error_value::<String>(None, body), None);
    }

    #[test]
    fn correlation_ids_differ() {
        let ids = CorrelationIds::new();
        assert_ne!(ids.next(), ids.next());
        assert_ne!(CorrelationIds::new().next(), CorrelationIds::new().next());
    }
}
