//! The service of fabric's crate docs: its generated API, and calls dispatched without a broker
//! in both codecs.

use std::fmt::Debug;
use std::time::Duration;

use fabric_core::{fabric_service, Codec, Dispatch, Error, RpcClient, ServerBuilder};
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

/// Encodes `args`, dispatches `method` with them and decodes the result.
fn call<A: Serialize, R: serde::de::DeserializeOwned>(codec: Codec, method: &str, args: &A) -> R {
    let body = codec.encode(args, "the test's arguments").unwrap();
    let reply = server().dispatch(method, codec, &body).unwrap();
    codec.decode(&reply, "the test's result").unwrap()
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

        let quotient: Result<i64, DivError> =
            call(codec, "divide", &MultiplierDivideArgs { x: 35, y: 7 });
        assert_eq!(quotient, Ok(5), "{codec:?}");

        // The service's own error is a value like any other.
        let refused: Result<i64, DivError> =
            call(codec, "divide", &MultiplierDivideArgs { x: 1, y: 0 });
        assert_eq!(
            refused,
            Err(DivError("division by zero".into())),
            "{codec:?}"
        );
    }
}

#[test]
fn json_bodies_are_what_a_python_peer_sends() {
    let reply = server()
        .dispatch("multiply", Codec::Json, br#"{"x": 6, "y": 7}"#)
        .unwrap();
    assert_eq!(reply, b"42");
    let reply = server()
        .dispatch("divide", Codec::Json, br#"{"x": 6, "y": 0}"#)
        .unwrap();
    assert_eq!(reply, br#"{"Err":"division by zero"}"#);
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
        let Error::UnknownMethod {
            service,
            method: unknown,
        } = err
        else {
            panic!("expected UnknownMethod for {method:?}, got {err:?}");
        };
        assert_eq!((service.as_str(), unknown.as_str()), ("Multiplier", method));
    }
}

#[test]
fn a_bad_body_is_a_codec_error_that_names_the_method() {
    let cases: [(Codec, &[u8]); 4] = [
        (Codec::Json, b"not json"),
        (Codec::Json, br#"{"x": 1}"#),
        (Codec::Json, br#"{"x": "one", "y": 2}"#),
        (Codec::Bincode, &[1, 2, 3]),
    ];
    for (codec, body) in cases {
        let err = server().dispatch("multiply", codec, body).unwrap_err();
        let Error::Codec { context, .. } = &err else {
            panic!("expected a codec error for {body:?}, got {err:?}");
        };
        assert!(context.contains("the arguments of `multiply`"), "{context}");
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
