//! Reading a call's arguments, with errors that name the argument a caller got wrong.
//!
//! A Python server answers `multiply(c=100)` with `TypeError: multiply() got an unexpected
//! keyword argument 'c'`. A fabric server answers the same call with an error reply of type
//! `TypeError` and a message in the same words, so a Python caller raises the same
//! exception, and a Rust caller gets [`Error::BadArguments`](crate::Error::BadArguments).
//!
//! A JSON body is decoded straight into the arguments struct. Only when that fails is it
//! decoded again, from its parsed object through a deserializer of our own whose error type
//! records what serde's derive reports (a missing field, an unknown field, the field whose
//! value did not fit): the kind of mistake is a type, never read out of a message.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::reply::DispatchError;
use crate::codec::Codec;

/// Decodes the arguments of `method`, whose parameters are `params` (in order), from a call's
/// `body`. The common case costs one decode; only a failing one is decoded again, to find
/// which argument failed.
pub fn decode_args<A: DeserializeOwned>(
    codec: Codec,
    body: &[u8],
    method: &str,
    params: &[&str],
) -> Result<A, DispatchError> {
    match codec {
        Codec::Json => serde_json::from_slice(body)
            .map_err(|e| DispatchError::BadArguments(explain_json::<A>(body, method, params, e))),
        Codec::Bincode => bincode::deserialize(body).map_err(|e| {
            DispatchError::BadArguments(format!("{method}() arguments do not decode: {e}"))
        }),
    }
}

/// Why a JSON body is not the arguments of `method`, as a Python server would say it.
fn explain_json<A: DeserializeOwned>(
    body: &[u8],
    method: &str,
    params: &[&str],
    error: serde_json::Error,
) -> String {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return format!(
                "{method}() takes keyword arguments: a JSON object, not {}",
                kind_of(&other)
            )
        }
        Err(_) => {
            return format!(
                "{method}() arguments do not decode: {}",
                without_position(&error)
            )
        }
    };
    // Python names the first unexpected keyword argument, before any other mistake.
    if let Some(name) = object.keys().find(|key| !params.contains(&key.as_str())) {
        if !params.is_empty() {
            return format!("{method}() got an unexpected keyword argument '{name}'");
        }
    }
    match A::deserialize(Arguments(object)) {
        Err(Mistake::Missing(name)) => format!("{method}() missing required argument '{name}'"),
        Err(Mistake::Unexpected(name)) => {
            format!("{method}() got an unexpected keyword argument '{name}'")
        }
        Err(Mistake::Argument { name, reason }) => {
            format!("{method}() argument '{name}': {reason}")
        }
        Err(Mistake::Other(reason)) => format!("{method}() arguments do not decode: {reason}"),
        // Decodes from the object but not from the text (a number too large for JSON's
        // parser, say): serde_json's own words.
        Ok(_) => format!(
            "{method}() arguments do not decode: {}",
            without_position(&error)
        ),
    }
}

/// What serde's derive reported about an arguments object.
#[derive(Debug)]
enum Mistake {
    /// A required field is missing.
    Missing(&'static str),
    /// A field the struct does not have (`deny_unknown_fields`).
    Unexpected(String),
    /// A field's value does not fit its type.
    Argument { name: String, reason: String },
    /// Anything else.
    Other(String),
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mistake::Missing(name) => write!(f, "missing field `{name}`"),
            Mistake::Unexpected(name) => write!(f, "unknown field `{name}`"),
            Mistake::Argument { name, reason } => write!(f, "field `{name}`: {reason}"),
            Mistake::Other(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Mistake {}

impl de::Error for Mistake {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Mistake::Other(message.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Mistake::Missing(field)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Mistake::Unexpected(field.to_owned())
    }
}

/// A parsed arguments object as a serde deserializer whose error is a [`Mistake`].
struct Arguments(Map<String, Value>);

impl<'de> de::Deserializer<'de> for Arguments {
    type Error = Mistake;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mistake> {
        visitor.visit_map(Fields {
            entries: self.0.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The fields of an [`Arguments`] object, one key and value at a time.
struct Fields {
    entries: serde_json::map::IntoIter,
    /// The field whose value is next: its name, for the error if the value does not fit.
    current: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Mistake;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Mistake> {
        let Some((name, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(name.as_str().into_deserializer())?;
        self.current = Some((name, value));
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Mistake> {
        let (name, value) = self
            .current
            .take()
            .ok_or_else(|| Mistake::Other("a value without its key".to_owned()))?;
        seed.deserialize(value).map_err(|e| Mistake::Argument {
            name,
            reason: e.to_string(),
        })
    }
}

/// What a JSON value is, in words.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list (arguments go by name)",
        Value::Object(_) => "an object",
    }
}

/// serde_json's message without its " at line L column C": a call body is one line.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        x: i64,
        y: i64,
        note: Option<String>,
    }

    fn refusal(body: &str) -> String {
        match decode_args::<Args>(
            Codec::Json,
            body.as_bytes(),
            "multiply",
            &["x", "y", "note"],
        ) {
            Err(DispatchError::BadArguments(message)) => message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn each_mistake_names_the_argument() {
        assert_eq!(
            refusal(r#"{"c": 100}"#),
            "multiply() got an unexpected keyword argument 'c'"
        );
        assert_eq!(
            refusal(r#"{"x": 1}"#),
            "multiply() missing required argument 'y'"
        );
        assert_eq!(
            refusal(r#"{"x": "a", "y": 2}"#),
            r#"multiply() argument 'x': invalid type: string "a", expected i64"#
        );
        assert_eq!(
            refusal(r#"{"x": 1, "y": 2, "note": 3}"#),
            "multiply() argument 'note': invalid type: integer `3`, expected a string"
        );
        assert_eq!(
            refusal("[1, 2]"),
            "multiply() takes keyword arguments: a JSON object, not a list (arguments go by name)"
        );
        assert!(refusal("nope").starts_with("multiply() arguments do not decode: "));
    }

    #[test]
    fn good_arguments_decode_in_both_codecs() {
        let args: Args = decode_args(Codec::Json, br#"{"y": 2, "x": 1}"#, "multiply", &[]).unwrap();
        assert_eq!((args.x, args.y, args.note), (1, 2, None));
        let body = bincode::serialize(&(3i64, 4i64, Some("n"))).unwrap();
        let args: Args = decode_args(Codec::Bincode, &body, "multiply", &[]).unwrap();
        assert_eq!((args.x, args.y, args.note.as_deref()), (3, 4, Some("n")));
        let err = decode_args::<Args>(Codec::Bincode, &[1], "multiply", &[]).unwrap_err();
        assert!(matches!(err, DispatchError::BadArguments(_)), "{err:?}");
    }
}
