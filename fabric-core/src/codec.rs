//! Body codecs, chosen per message by its `content_type`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// How a message body is encoded.
///
/// A server answers in the codec of the request, so Rust and Python callers can share one
/// server. Error replies are always JSON, as amqp-fabric writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// bincode 1.x: compact and fast; only Rust peers read it. The default.
    #[default]
    Bincode,
    /// JSON, as amqp-fabric (Python) sends and expects: arguments are an object of keyword
    /// arguments, the result is the bare value.
    Json,
}

/// The content type of [`Codec::Bincode`] bodies.
pub const BINCODE_CONTENT_TYPE: &str = "application/x-fabric-bincode";
/// The content type of [`Codec::Json`] bodies, as amqp-fabric sends it.
pub const JSON_CONTENT_TYPE: &str = "application/json";

impl Codec {
    /// The `content_type` property that names this codec on the wire.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Bincode => BINCODE_CONTENT_TYPE,
            Codec::Json => JSON_CONTENT_TYPE,
        }
    }

    /// The codec for a `content_type` property. A message without one is JSON, as amqp-fabric
    /// peers assume; an unknown one is `None`.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Codec> {
        match content_type {
            None | Some("") | Some(JSON_CONTENT_TYPE) | Some("text/json") => Some(Codec::Json),
            Some(BINCODE_CONTENT_TYPE) => Some(Codec::Bincode),
            Some(_) => None,
        }
    }

    /// Encodes `value`; `what` names it in the error ("the arguments of `multiply`"), and is
    /// only formatted when there is one.
    pub fn encode<T: Serialize + ?Sized>(
        self,
        value: &T,
        what: impl std::fmt::Display,
    ) -> Result<Vec<u8>> {
        let encoded = match self {
            Codec::Bincode => bincode::serialize(value).map_err(|e| e.to_string()),
            Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
        };
        encoded.map_err(|reason| Error::Codec {
            context: format!("encode {what} as {self:?}"),
            reason,
        })
    }

    /// Decodes a `T` from `bytes`; `what` names it in the error.
    pub fn decode<T: DeserializeOwned>(
        self,
        bytes: &[u8],
        what: impl std::fmt::Display,
    ) -> Result<T> {
        let decoded = match self {
            Codec::Bincode => bincode::deserialize(bytes).map_err(|e| e.to_string()),
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        };
        decoded.map_err(|reason| Error::Codec {
            context: format!("decode {what} as {self:?}"),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_round_trip() {
        for codec in [Codec::Bincode, Codec::Json] {
            assert_eq!(
                Codec::from_content_type(Some(codec.content_type())),
                Some(codec)
            );
        }
        assert_eq!(Codec::from_content_type(None), Some(Codec::Json));
        assert_eq!(Codec::from_content_type(Some("text/plain")), None);
    }

    #[test]
    fn bincode_encodes_into_a_body_sized_in_advance() {
        // bincode measures the value first, so the body is allocated once, at its size: the
        // payload is copied once, straight into it, and never moved on growing.
        let blob = crate::Bytes(vec![7; 100_000]);
        let body = Codec::Bincode.encode(&blob, "a blob").unwrap();
        assert_eq!(body.len(), 8 + 100_000);
        assert_eq!(body.capacity(), body.len());
    }

    #[test]
    fn decode_error_names_what_and_codec() {
        let err = Codec::Json.decode::<i64>(b"nope", "the reply").unwrap_err();
        assert!(
            err.to_string().contains("decode the reply as Json"),
            "{err}"
        );
    }
}
