//! The RPC messages of amqp-fabric: properties of calls and replies, and error bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amiquip::{AmqpProperties, AmqpValue, FieldTable};
use serde::{Deserialize, Serialize};

use crate::Codec;

/// The `type` property of a call.
pub(crate) const TYPE_CALL: &str = "call";
/// The `type` property of a successful reply.
pub(crate) const TYPE_RESULT: &str = "result";
/// The `type` property of a failed reply.
pub(crate) const TYPE_ERROR: &str = "error";
/// The method every server answers with `true`.
pub(crate) const HEALTH_CHECK: &str = "health_check";

/// Error kinds a fabric server puts in error replies.
pub(crate) mod error_kind {
    /// The handler panicked.
    pub const PANIC: &str = "panic";
    /// The call's body or content type could not be read.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The service has no such method.
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    /// The result could not be encoded, or another server-side failure.
    pub const INTERNAL: &str = "internal";
}

/// Properties of a call, as aio-pika's RPC pattern sends them.
pub(crate) fn call_properties(
    correlation_id: String,
    reply_to: &str,
    codec: Codec,
    timeout: Duration,
) -> AmqpProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "From".to_owned(),
        AmqpValue::LongString(reply_to.to_owned()),
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

/// Properties of a reply.
pub(crate) fn reply_properties(
    correlation_id: Option<String>,
    kind: &str,
    content_type: &str,
) -> AmqpProperties {
    let properties = AmqpProperties::default()
        .with_content_type(content_type.to_owned())
        .with_type_(kind.to_owned())
        .with_delivery_mode(1);
    match correlation_id {
        Some(id) => properties.with_correlation_id(id),
        None => properties,
    }
}

/// The body of an error reply: `{"error": {"type": ..., "message": ..., "args": [...]}}`.
#[derive(Debug, Serialize, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    #[serde(default)]
    args: Vec<serde_json::Value>,
}

/// Encodes an error reply body. Always JSON, whatever the call's codec, as amqp-fabric does.
pub(crate) fn encode_error(kind: &str, message: &str) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: kind.to_owned(),
            message: message.to_owned(),
            args: vec![serde_json::Value::String(message.to_owned())],
        },
    };
    serde_json::to_vec(&body).expect("an error body of strings always encodes")
}

/// Reads an error reply body into (kind, message). A body that is not amqp-fabric's shape is
/// kept whole as the message, so nothing the server said is lost.
pub(crate) fn decode_error(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => (error.kind, error.message),
        Err(_) => (
            "unknown".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ),
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
        assert_eq!(value["error"]["type"], "panic");
        assert_eq!(value["error"]["message"], "boom");
        assert_eq!(decode_error(&body), ("panic".into(), "boom".into()));
        assert_eq!(decode_error(b"plain"), ("unknown".into(), "plain".into()));
    }

    #[test]
    fn correlation_ids_differ() {
        let ids = CorrelationIds::new();
        assert_ne!(ids.next(), ids.next());
        assert_ne!(CorrelationIds::new().next(), CorrelationIds::new().next());
    }
}
