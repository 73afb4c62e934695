//! The service of fabric's crate docs: its generated API, and calls dispatched without a broker
//! in both codecs.

use std::fmt::Debug;
use std::time::Duration;

use fabric_core::{
    fabric_service, Codec, Dispatch, DispatchError, Reply, RpcClient, ServerBuilder,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct DivError(String);

#[fabric_service]
pub trait Multiplier {
    /// Multiplies two numbers.
    fn multiply(&self, x: i64, y: i64) -> i64;
    /// Divides, refusing zero.
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
}

struct Calc;

impl Multiplier for Calc {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        x.checked_div(y)
            .ok_or_else(|| DivError("division by zero".into()))
    }
}

/// The server as `MultiplierServer::new` would hand it to a `ServerBuilder`.
fn server() -> MultiplierServer<Calc> {
    MultiplierServer { imp: Calc }
}

/// Encodes `args` and dispatches `method` with them.
fn dispatch<A: Serialize>(codec: Codec, method: &str, args: &A) -> Reply {
    let body = codec.encode(args, "the test's arguments").unwrap();
    server().dispatch(method, codec, &body).unwrap()
}

/// Encodes `args`, dispatches `method` with them and decodes the value it answered.
fn call<A: Serialize, R: serde::de::DeserializeOwned>(codec: Codec, method: &str, args: &A) -> R {
    let reply = dispatch(codec, method, args);
    assert!(!reply.is_error(), "{method} answered an error: {reply:?}");
    codec.decode(reply.body(), "the test's result").unwrap()
}

#[test]
fn args_structs_are_amqp_fabric_keyword_arguments() {
    let args = MultiplierMultiplyArgs { x: 5, y: 7 };
    let json = Codec::Json.encode(&args, "args").unwrap();
    assert_eq!(std::str::from_utf8(&json).unwrap(), r#"{"x":5,"y":7}"#);

    let back: MultiplierDivideArgs = Codec::Json.decode(br#"{"y":7,"x":5}"#, "args").unwrap();
    assert_eq!((back.x, back.y), (5, 7));

    let bincode = Codec::Bincode.encode(&args, "args").unwrap();
    let back: MultiplierMultiplyArgs = Codec::Bincode.decode(&bincode, "args").unwrap();
    assert_eq!((back.x, back.y), (5, 7));
}

#[test]
fn dispatches_in_both_codecs() {
    for codec in [Codec::Json, Codec::Bincode] {
        let product: i64 = call(codec, "multiply", &MultiplierMultiplyArgs { x: 5, y: 7 });
        assert_eq!(product, 35, "{codec:?}");

        // A `Result` method answers its `Ok` value alone, as a Python server returns it.
        let quotient: i64 = call(codec, "divide", &MultiplierDivideArgs { x: 35, y: 7 });
        assert_eq!(quotient, 5, "{codec:?}");

        // Its `Err` is an error reply, named after the error's type.
        let refused = dispatch(codec, "divide", &MultiplierDivideArgs { x: 1, y: 0 });
        assert_eq!(refused.error_type(), Some("DivError"), "{codec:?}");
        assert_eq!(refused.codec(), codec);
    }
}

#[test]
fn json_bodies_are_what_a_python_peer_sends_and_gets() {
    let reply = server()
        .dispatch("multiply", Codec::Json, br#"{"x": 6, "y": 7}"#)
        .unwrap();
    assert_eq!(reply.body(), b"42");
    let reply = server()
        .dispatch("divide", Codec::Json, br#"{"x": 42, "y": 2}"#)
        .unwrap();
    assert_eq!(reply.body(), b"21");
    let reply = server()
        .dispatch("divide", Codec::Json, br#"{"x": 6, "y": 0}"#)
        .unwrap();
    assert!(reply.is_error());
    let body: serde_json::Value = serde_json::from_slice(reply.body()).unwrap();
    // amqp-fabric's error body; `message` is the error's Debug (it has no Display), and the
    // error itself travels in `value` for Rust callers.
    assert_eq!(
        body,
        serde_json::json!({"error": {
            "type": "DivError",
            "message": "DivError(\"division by zero\")",
            "args": ["DivError(\"division by zero\")"],
            "value": "division by zero",
        }})
    );
}

#[test]
fn names_the_service_and_its_methods() {
    assert_eq!(<MultiplierServer<Calc> as Dispatch>::SERVICE, "Multiplier");
    assert_eq!(
        <MultiplierServer<Calc> as Dispatch>::METHODS,
        ["multiply", "divide"]
    );
}

#[test]
fn an_unknown_method_is_reported_as_such() {
    let body = Codec::Json
        .encode(&MultiplierMultiplyArgs { x: 1, y: 2 }, "args")
        .unwrap();
    for method in ["add", "health_check", "Multiply", ""] {
        let err = server().dispatch(method, Codec::Json, &body).unwrap_err();
        assert_eq!(err, DispatchError::UnknownMethod, "{method:?}");
    }
}

#[test]
fn bad_arguments_are_refused_naming_the_argument() {
    let cases: [(Codec, &[u8], &str); 5] = [
        (
            Codec::Json,
            b"not json",
            "multiply() arguments do not decode: ",
        ),
        (
            Codec::Json,
            br#"{"x": 1}"#,
            "multiply() missing required argument 'y'",
        ),
        (
            Codec::Json,
            br#"{"x": "one", "y": 2}"#,
            "multiply() argument 'x': invalid type: string",
        ),
        (
            Codec::Json,
            br#"{"x": 1, "y": 2, "c": 100}"#,
            "multiply() got an unexpected keyword argument 'c'",
        ),
        (
            Codec::Bincode,
            &[1, 2, 3],
            "multiply() arguments do not decode: ",
        ),
    ];
    for (codec, body, expected) in cases {
        match server().dispatch("multiply", codec, body) {
            Err(DispatchError::BadArguments(message)) => {
                assert!(message.starts_with(expected), "{message}")
            }
            other => panic!("expected bad arguments for {body:?}, got {other:?}"),
        }
    }
}

#[test]
fn the_client_has_the_documented_api() {
    fn shareable<T: Clone + Debug + Send + Sync + 'static>() {}
    shareable::<MultiplierClient>();

    // Every generated method, by its exact type.
    let _: fn(&fabric_core::Fabric, &str, &str, &str) -> fabric_core::Result<MultiplierClient> =
        MultiplierClient::connect;
    let _: fn(RpcClient) -> MultiplierClient = MultiplierClient::from_rpc;
    let _: fn(&MultiplierClient, Duration) -> MultiplierClient = MultiplierClient::with_timeout;
    let _: fn(&MultiplierClient, Codec) -> MultiplierClient = MultiplierClient::with_codec;
    let _: fn(&MultiplierClient) -> fabric_core::Result<bool> = MultiplierClient::health_check;
    let _: fn(&MultiplierClient) -> &RpcClient = MultiplierClient::rpc;
    let _: fn(&MultiplierClient, i64, i64) -> fabric_core::Result<i64> = MultiplierClient::multiply;
    let _: fn(&MultiplierClient, i64, i64) -> fabric_core::Result<Result<i64, DivError>> =
        MultiplierClient::divide;
}

#[test]
fn the_server_has_the_documented_api() {
    fn dispatcher<D: Dispatch + Debug>() {}
    dispatcher::<MultiplierServer<Calc>>();

    let _: fn(Calc) -> ServerBuilder<MultiplierServer<Calc>> = MultiplierServer::new;
    let _builder = MultiplierServer::new(Calc).workers(2);

    let server = server();
    let _: &Calc = server.get_ref();
    assert_eq!(format!("{server:?}"), "MultiplierServer { .. }");
}
