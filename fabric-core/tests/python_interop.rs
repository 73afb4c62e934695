//! Rust and Python (amqp-fabric) services calling each other through the same broker.
//!
//! Needs `python3` with `amqp-fabric` installed (`ci/test.sh` installs it); a missing one fails
//! the test with that instruction.

mod support;

use fabric_core::{fabric_service, Codec, Error, RpcClient};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::python::Peer;

#[derive(Serialize)]
struct MultiplyArgs {
    x: i64,
    y: i64,
}

#[test]
fn a_rust_client_calls_a_python_server() {
    let domain = support::unique_domain("py-server");
    let server = Peer::spawn("server.py", &[&domain, "calc", "py1"]);
    assert_eq!(server.next_line(), "ready");

    let fabric = support::connect(&domain, "rust_client", "r1");
    let client = RpcClient::connect(&fabric, &domain, "calc", "py1")
        .unwrap()
        .with_codec(Codec::Json);
    let product: i64 = client
        .call("multiply", &MultiplyArgs { x: 6, y: 7 })
        .unwrap();
    assert_eq!(product, 42);
    let described: serde_json::Value = client
        .call("describe", &json!({"name": "rs", "tags": ["z", "y"]}))
        .unwrap();
    assert_eq!(
        described,
        json!({"name": "RS", "tags": ["y", "z"], "count": 2})
    );
    assert!(client.health_check().unwrap());

    let err = client
        .call::<_, f64>("divide", &MultiplyArgs { x: 1, y: 0 })
        .unwrap_err();
    match err {
        Error::Remote { kind, message, .. } => {
            assert!(kind.ends_with("ZeroDivisionError"), "{kind}");
            assert!(message.contains("division by zero"), "{message}");
        }
        other => panic!("expected the Python exception, got {other:?}"),
    }
    let err = client.call::<_, i64>("no_such", &json!({})).unwrap_err();
    assert!(matches!(err, Error::UnknownMethod { .. }), "{err:?}");

    server.finish();
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Description {
    name: String,
    tags: Vec<String>,
    count: usize,
}

#[fabric_service]
pub trait Calc {
    fn multiply(&self, x: i64, y: i64) -> i64;
    fn describe(&self, name: String, tags: Vec<String>) -> Description;
}

struct RustCalc;

impl Calc for RustCalc {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
    fn describe(&self, name: String, mut tags: Vec<String>) -> Description {
        tags.sort();
        Description {
            name: name.to_uppercase(),
            count: tags.len(),
            tags,
        }
    }
}

#[test]
fn a_python_client_calls_a_rust_server() {
    let domain = support::unique_domain("py-client");
    let fabric = support::connect(&domain, "calc", "rs1");
    let _server = CalcServer::new(RustCalc).workers(2).serve(&fabric).unwrap();

    let client = Peer::spawn("client.py", &[&domain, "calc", "rs1"]);
    let results: Vec<serde_json::Value> = (0..4)
        .map(|_| serde_json::from_str(&client.next_line()).unwrap())
        .collect();
    client.finish();

    assert_eq!(results[0], json!({"call": "multiply", "result": 42}));
    assert_eq!(
        results[1],
        json!({"call": "describe", "result": {"name": "PY", "tags": ["a", "b"], "count": 2}})
    );
    assert_eq!(results[2], json!({"call": "health_check", "result": true}));
    // A string where an integer belongs: an error reply the Python side can read.
    assert_eq!(results[3]["call"], "multiply");
    let message = results[3]["message"].as_str().unwrap_or_default();
    assert!(results[3].get("error").is_some(), "{}", results[3]);
    assert!(message.contains("bad_request"), "{message}");
}
