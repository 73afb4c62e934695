//! A method's outcome, encoded for the wire: a value, or the service's own error.
//!
//! A method that returns `Result<T, E>` answers `Ok(v)` with a `result` message whose body is
//! the plain `v`, as a Python server returns a value, and `Err(e)` with an `error` message, as
//! a Python server raises: amqp-fabric's error body with a `type` a Python caller can catch
//! by, a human-readable `message`, and `e` itself beside them so a Rust caller gets it back
//! intact.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::ser::{self, Impossible, Serialize};

use super::dispatch::DispatchError;
use super::protocol;
use crate::Codec;

/// The `type` of an error whose value has no name of its own in serde's data model.
pub(crate) const UNNAMED_ERROR: &str = "Error";

/// What a method's call produced, encoded in the call's codec: the return value (sent as a
/// `result` message), or the service's own error (an `error` message). Made by
/// [`Reply::value`] and [`Reply::error`]; returned by [`Dispatch::dispatch`](crate::Dispatch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    codec: Codec,
    body: Vec<u8>,
    /// `Some(type)` for an error.
    error_type: Option<String>,
}

impl Reply {
    /// The method returned `value`: a `result` whose body is the value alone.
    pub fn value<T: Serialize + ?Sized>(codec: Codec, value: &T) -> Result<Reply, DispatchError> {
        let body = codec
            .encode(value, "the result")
            .map_err(|e| DispatchError::Unencodable(e.to_string()))?;
        Ok(Reply {
            codec,
            body,
            error_type: None,
        })
    }

    /// The method returned `Err(error)`: an `error` reply whose `type` is the error's name,
    /// with `message` for people and the error itself for Rust callers, who get it back as
    /// `Ok(Err(error))`.
    ///
    /// The `type` is the error's name in serde's data model, so it is stable (it does not move with the
    /// module the type lives in) and `#[serde(rename)]` chooses it:
    ///
    /// | the error | its `type` |
    /// | --- | --- |
    /// | a variant of an enum, `DivError::DivisionByZero` | `DivError.DivisionByZero` |
    /// | a struct, unit struct or newtype, `NotFound(String)` | `NotFound` |
    /// | anything without a name (a `String`, a number, a tuple, a list) | `Error` |
    ///
    /// (`Option`, `Box` and other wrappers that serde sees through are seen through.) A Python
    /// caller rebuilds an exception from a `type` it can import (a built-in such as `ValueError`,
    /// which a Python server names without a module, or `module.Class`) and raises anything else
    /// as aio-pika's `JsonRPCError`, whose `args[1]["error"]["type"]` is the name; so an error
    /// renamed `ValueError` is raised in Python as a `ValueError`.
    pub fn error<E: Serialize + ?Sized>(
        codec: Codec,
        error: &E,
        message: impl Into<String>,
    ) -> Result<Reply, DispatchError> {
        let kind = error_type(error);
        let message = message.into();
        let body = protocol::encode_service_error(codec, &kind, &message, error)
            .map_err(|e| DispatchError::Unencodable(format!("cannot encode the error: {e}")))?;
        Ok(Reply {
            codec,
            body,
            error_type: Some(kind),
        })
    }

    /// Whether this is the service's own error rather than a value.
    pub fn is_error(&self) -> bool {
        self.error_type.is_some()
    }

    /// The error's `type` on the wire, for an error.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    /// The codec the body is encoded with: the call's.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The encoded body, as it goes on the wire.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The encoded body, taken out of the reply.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The value, decoded as a `T`: what a caller gets for a value reply. An error reply is
    /// [`Error::Remote`](crate::Error::Remote) with the error's type and message.
    pub fn decode<T: DeserializeOwned>(&self) -> crate::Result<T> {
        match &self.error_type {
            None => self.codec.decode(&self.body, "the reply's value"),
            Some(kind) => Err(crate::Error::Remote {
                service: String::new(),
                method: String::new(),
                kind: kind.clone(),
                message: protocol::decode_error(Some(self.codec), &self.body).message,
            }),
        }
    }

    /// The service's own error, decoded as an `E`: `None` for a value reply.
    pub fn decode_error<E: DeserializeOwned>(&self) -> Option<crate::Result<E>> {
        self.error_type.as_ref()?;
        let decoded = protocol::decode_error_value(Some(self.codec), &self.body)?;
        Some(decoded.map_err(|reason| crate::Error::Codec {
            context: "decode the reply's error".to_owned(),
            reason,
        }))
    }
}

/// The `type` an error reply gives `error`: its name in serde's data model.
pub(crate) fn error_type<E: Serialize + ?Sized>(error: &E) -> String {
    match error.serialize(NameOf) {
        Err(Named(name)) => name,
        Ok(never) => match never {},
    }
}

/// A serializer that stops at the first name serde gives it, and reports it as its "error".
struct NameOf;

/// The name found; the only way [`NameOf`] ends.
#[derive(Debug)]
struct Named(String);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Named {}

impl ser::Error for Named {
    fn custom<T: fmt::Display>(_: T) -> Self {
        // A value that fails to serialize has no name to give.
        Named(UNNAMED_ERROR.to_owned())
    }
}

/// No value of it exists: [`NameOf`] never succeeds.
enum Never {}

fn unnamed<T>() -> Result<T, Named> {
    Err(Named(UNNAMED_ERROR.to_owned()))
}

fn named<T>(name: &str) -> Result<T, Named> {
    Err(Named(name.to_owned()))
}

fn variant<T>(name: &str, variant: &str) -> Result<T, Named> {
    Err(Named(format!("{name}.{variant}")))
}

impl ser::Serializer for NameOf {
    type Ok = Never;
    type Error = Named;
    type SerializeSeq = Impossible<Never, Named>;
    type SerializeTuple = Impossible<Never, Named>;
    type SerializeTupleStruct = Impossible<Never, Named>;
    type SerializeTupleVariant = Impossible<Never, Named>;
    type SerializeMap = Impossible<Never, Named>;
    type SerializeStruct = Impossible<Never, Named>;
    type SerializeStructVariant = Impossible<Never, Named>;

    fn serialize_unit_struct(self, name: &'static str) -> Result<Never, Named> {
        named(name)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: &T,
    ) -> Result<Never, Named> {
        named(name)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Named> {
        named(name)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Named> {
        named(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        v: &'static str,
    ) -> Result<Never, Named> {
        variant(name, v)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        v: &'static str,
        _: &T,
    ) -> Result<Never, Named> {
        variant(name, v)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Named> {
        variant(name, v)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Named> {
        variant(name, v)
    }
    // What serde sees through: the name is the inner value's.
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Never, Named> {
        value.serialize(self)
    }

    // What has no name.
    fn serialize_bool(self, _: bool) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_i8(self, _: i8) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_i16(self, _: i16) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_i32(self, _: i32) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_i64(self, _: i64) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_u8(self, _: u8) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_u16(self, _: u16) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_u32(self, _: u32) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_u64(self, _: u64) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_f32(self, _: f32) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_f64(self, _: f64) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_char(self, _: char) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_str(self, _: &str) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_none(self) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_unit(self) -> Result<Never, Named> {
        unnamed()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Named> {
        unnamed()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Named> {
        unnamed()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Named> {
        unnamed()
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    enum DivError {
        DivisionByZero,
        Overflow(i64),
        Range { low: i64 },
        Pair(i64, i64),
    }

    #[derive(Serialize)]
    struct NotFound(String);

    #[derive(Serialize)]
    struct Gone;

    #[derive(Serialize)]
    struct Refused {
        why: String,
    }

    #[derive(Serialize)]
    #[serde(rename = "ValueError")]
    struct ValueError(String);

    #[test]
    fn errors_are_named_by_serde() {
        assert_eq!(
            error_type(&DivError::DivisionByZero),
            "DivError.DivisionByZero"
        );
        assert_eq!(error_type(&DivError::Overflow(1)), "DivError.Overflow");
        assert_eq!(error_type(&DivError::Range { low: 0 }), "DivError.Range");
        assert_eq!(error_type(&DivError::Pair(1, 2)), "DivError.Pair");
        assert_eq!(error_type(&NotFound("x".into())), "NotFound");
        assert_eq!(error_type(&Gone), "Gone");
        assert_eq!(error_type(&Refused { why: "x".into() }), "Refused");
        assert_eq!(error_type(&ValueError("x".into())), "ValueError");
        assert_eq!(error_type(&Box::new(Some(Gone))), "Gone");
        assert_eq!(error_type("text"), UNNAMED_ERROR);
        assert_eq!(error_type(&42), UNNAMED_ERROR);
        assert_eq!(error_type(&vec![Gone]), UNNAMED_ERROR);
    }

    #[test]
    fn a_reply_is_a_value_or_an_error() {
        let value = Reply::value(Codec::Json, &42).unwrap();
        assert!(!value.is_error());
        assert_eq!(value.body(), b"42");
        let error = Reply::error(Codec::Json, &Gone, "it is gone").unwrap();
        assert_eq!(error.error_type(), Some("Gone"));
        let failure = protocol::decode_error(Some(Codec::Json), error.body());
        assert_eq!(failure.message, "it is gone");
        assert_eq!(value.decode::<u8>().unwrap(), 42);
        assert!(value.decode_error::<String>().is_none());
        assert!(
            matches!(error.decode::<u8>(), Err(crate::Error::Remote { kind, .. }) if kind == "Gone")
        );
        assert!(matches!(error.decode_error::<()>(), Some(Ok(()))));
    }
}
