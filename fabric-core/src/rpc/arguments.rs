//! Reading a call's arguments, with errors that name the argument a caller got wrong.
//!
//! A Python server answers `multiply(c=100)` with `TypeError: multiply() got an unexpected
//! keyword argument 'c'`. A fabric server answers the same call with an error reply of type
//! `TypeError` and a message in the same words, so a Python caller raises the same
//! exception, and a Rust caller gets [`Error::BadArguments`](crate::Error::BadArguments).

use serde::de::DeserializeOwned;

use super::dispatch::DispatchError;
use crate::Codec;

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
            .map_err(|_| DispatchError::BadArguments(explain_json::<A>(body, method, params))),
        Codec::Bincode => bincode::deserialize(body).map_err(|e| {
            DispatchError::BadArguments(format!("{method}() arguments do not decode: {e}"))
        }),
    }
}

/// Why a JSON body is not the arguments of `method`, as a Python server would say it.
fn explain_json<A: DeserializeOwned>(body: &[u8], method: &str, params: &[&str]) -> String {
    let error = match serde_path_to_error::deserialize::<_, A>(
        &mut serde_json::Deserializer::from_slice(body),
    ) {
        // Decodes when tracked: the first failure was a fluke of the input's end, say.
        Ok(_) => return format!("{method}() arguments do not decode"),
        Err(error) => error,
    };
    let reason = without_position(error.inner());
    let argument = error
        .path()
        .iter()
        .next()
        .and_then(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        });
    match argument {
        Some(name) if !params.contains(&name.as_str()) => {
            format!("{method}() got an unexpected keyword argument '{name}'")
        }
        Some(name) => format!("{method}() argument '{name}': {reason}"),
        None => match missing(body, params, &reason) {
            Some(name) => format!("{method}() missing required argument '{name}'"),
            None => format!("{method}() arguments do not decode: {reason}"),
        },
    }
}

/// The parameter a body that is a JSON object lacks, when that is what `reason` is about:
/// the one serde names, among those absent.
fn missing<'p>(body: &[u8], params: &[&'p str], reason: &str) -> Option<&'p str> {
    let given: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        serde_json::from_slice(body).ok()?;
    params
        .iter()
        .copied()
        .filter(|param| !given.contains_key(*param))
        .find(|param| reason.contains(&format!("`{param}`")))
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
