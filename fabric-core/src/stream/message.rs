//! A message as data and event subscribers receive it.

use amiquip::AmqpProperties;
use serde::de::DeserializeOwned;

use super::Headers;
use crate::broker::consumer::Incoming;
use crate::codec::Codec;
use crate::error::{Error, Result};

/// One data message or event, as received.
#[derive(Debug, Clone)]
pub struct Message {
    body: Vec<u8>,
    headers: Headers,
    content_type: Option<String>,
    routing_key: String,
    redelivered: bool,
}

impl Message {
    pub(crate) fn from_incoming(incoming: Incoming) -> Message {
        let Incoming {
            body,
            properties,
            routing_key,
            redelivered,
        } = incoming;
        Message {
            headers: headers_of(&properties),
            content_type: properties.content_type().clone(),
            body,
            routing_key,
            redelivered,
        }
    }

    /// A message as a subscriber would receive it, published with `properties` to
    /// `routing_key`, for a test double that keeps what it publishes.
    pub(crate) fn published(
        body: Vec<u8>,
        properties: AmqpProperties,
        routing_key: &str,
    ) -> Message {
        Message::from_incoming(Incoming {
            body,
            properties,
            routing_key: routing_key.to_owned(),
            redelivered: false,
        })
    }

    /// The body as published.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken out of the message.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The headers, including the publisher's `service_id` and `service_type`.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The publisher's service id, from the `service_id` header.
    pub fn publisher_id(&self) -> Option<&str> {
        self.headers.get_str("service_id")
    }

    /// The publisher's service type, from the `service_type` header.
    pub fn publisher_type(&self) -> Option<&str> {
        self.headers.get_str("service_type")
    }

    /// The trace the message was sent in (W3C's trace id, 32 lowercase hex digits), from its
    /// `traceparent` header; `None` for a message without one (a Python peer's).
    pub fn trace_id(&self) -> Option<&str> {
        crate::trace::trace_id_of(self.headers.get_str("traceparent")?)
    }

    /// The routing key: an event's topic; empty for data messages.
    pub fn routing_key(&self) -> &str {
        &self.routing_key
    }

    /// The content type, naming the codec of a typed publish.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Whether the broker delivered this message before, to a subscriber that did not ack it.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// Decodes the body with the codec its content type names (JSON when it names none, as
    /// Python publishers send).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        let codec = Codec::from_content_type(self.content_type()).ok_or_else(|| Error::Codec {
            context: "decode a message".to_owned(),
            reason: format!(
                "content type {:?} names no codec fabric knows",
                self.content_type
            ),
        })?;
        codec.decode(&self.body, "a message body")
    }
}

fn headers_of(properties: &AmqpProperties) -> Headers {
    properties
        .headers()
        .as_ref()
        .map(Headers::from_table)
        .unwrap_or_default()
}
