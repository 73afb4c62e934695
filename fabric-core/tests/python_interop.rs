//! Rust and Python (amqp-fabric) services calling each other through the same broker: values,
//! the services' own errors, bad arguments, unknown methods and services, timeouts.
//!
//! Needs `python3` with `amqp-fabric` installed (`ci/test.sh` installs it); a missing one fails
//! the test with that instruction.

mod support;

use std::fmt;
use std::time::Duration;

use fabric_core::{fabric_service, Codec, Error, RpcClient};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::python::Peer;

#[derive(Serialize)]
struct MultiplyArgs {
    x: i64,
    y: i64,
}

#[test]
fn a_rust_client_calls_a_python_server() {
    support::python::hold_rpc_dlx();
    let domain = support::unique_domain("py-server");
    let server = Peer::spawn("server.py", &[&domain, "calc", "py1"]);
    assert_eq!(server.next_line(), "ready");

    let fabric = support::connect(&domain, "rust_client", "r1");
    let client = RpcClient::new(&fabric, &domain, "calc", "py1")
        .unwrap()
        .with_codec(Codec::Json);
    let product: i64 = client
        .call("multiply", &MultiplyArgs { x: 6, y: 7 })
        .unwrap();
    assert_eq!(product, 42);
    let described: Value = client
        .call("describe", &json!({"name": "rs", "tags": ["z", "y"]}))
        .unwrap();
    assert_eq!(
        described,
        json!({"name": "RS", "tags": ["y", "z"], "count": 2})
    );
    assert!(client.health_check().unwrap());

    // A Python exception is a remote error named by its class path.
    let err = client
        .call::<_, i64>("divide", &MultiplyArgs { x: 1, y: 0 })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Remote { kind, message, .. }
            if kind == "ZeroDivisionError" && message.contains("division")),
        "{err:?}"
    );
    // Also for a method the Rust side declares as returning `Result`: a Python exception
    // carries no value of the Rust error type.
    let err = client
        .call_fallible::<_, i64, DivError>("divide", &MultiplyArgs { x: 1, y: 0 })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Remote { kind, .. } if kind == "ZeroDivisionError"),
        "{err:?}"
    );
    let quotient = client
        .call_fallible::<_, i64, DivError>("divide", &MultiplyArgs { x: 84, y: 2 })
        .unwrap();
    assert_eq!(quotient, Ok(42));
    // Python's own TypeError for a keyword argument it does not take.
    let err = client
        .call::<_, i64>("multiply", &json!({"c": 100}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadArguments { message, .. } if message.contains("unexpected keyword argument 'c'")),
        "{err:?}"
    );
    let err = client.call::<_, i64>("no_such", &json!({})).unwrap_err();
    assert!(matches!(err, Error::UnknownMethod { .. }), "{err:?}");
    let nobody = RpcClient::new(&fabric, &domain, "calc", "nobody")
        .unwrap()
        .with_codec(Codec::Json);
    let err = nobody.call::<_, i64>("multiply", &MultiplyArgs { x: 1, y: 1 });
    assert!(matches!(err, Err(Error::NoSuchService { .. })), "{err:?}");
    let err = client
        .with_timeout(Duration::from_millis(300))
        .call::<_, f64>("nap", &json!({"seconds": 2}))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    server.finish();
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Description {
    name: String,
    tags: Vec<String>,
    count: usize,
}

/// An error a Python caller sees as `JsonRPCError` whose body's type is
/// `DivError.DivisionByZero`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum DivError {
    DivisionByZero,
}

impl fmt::Display for DivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}

/// An error a Python caller raises as its own `ValueError`: named as a Python server names it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "ValueError")]
pub struct ValueError(String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[fabric_service]
pub trait Calc {
    fn multiply(&self, x: i64, y: i64) -> i64;
    fn describe(&self, name: String, tags: Vec<String>) -> Description;
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
    fn root(&self, x: f64) -> Result<f64, ValueError>;
    fn explode(&self) -> u32;
    /// What the handler sees of its caller: trace id, parent span, whether a deadline came.
    fn seen(&self) -> (String, Option<String>, bool);
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
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        x.checked_div(y).ok_or(DivError::DivisionByZero)
    }
    fn root(&self, x: f64) -> Result<f64, ValueError> {
        if x < 0.0 {
            return Err(ValueError("the root of a negative number".into()));
        }
        Ok(x.sqrt())
    }
    fn explode(&self) -> u32 {
        panic!("kaboom")
    }
    fn seen(&self) -> (String, Option<String>, bool) {
        let call = fabric_core::CallContext::current().unwrap();
        (
            call.trace_id().to_owned(),
            call.parent_span_id().map(str::to_owned),
            call.deadline().is_some(),
        )
    }
}

/// The calls both servers get, and what a Python caller sees of each.
fn calls() -> Value {
    json!([
        ["multiply", {"x": 6, "y": 7}],
        ["describe", {"name": "py", "tags": ["b", "a"]}],
        ["health_check", {}],
        ["divide", {"x": 84, "y": 2}],
        ["divide", {"x": 1, "y": 0}],
        ["root", {"x": -1.0}],
        ["multiply", {"c": 100}],
        ["multiply", {"x": 1}],
        ["multiply", {"x": "not a number", "y": 7}],
        ["no_such", {"x": 1}],
        ["explode", {}],
    ])
}

/// Runs the Python client's calls against the service `DOMAIN.calc.{id}`.
fn python_calls(domain: &str, id: &str) -> Vec<Value> {
    python_calls_of(domain, id, calls())
}

/// Runs the Python client's `calls` against the service `DOMAIN.calc.{id}`.
fn python_calls_of(domain: &str, id: &str, calls: Value) -> Vec<Value> {
    let client = Peer::spawn("client.py", &[domain, "calc", id, &calls.to_string()]);
    let outcomes = (0..calls.as_array().unwrap().len())
        .map(|_| serde_json::from_str(&client.next_line()).unwrap())
        .collect();
    client.finish();
    outcomes
}

#[test]
fn a_python_client_calls_a_rust_server() {
    support::python::hold_rpc_dlx();
    let domain = support::unique_domain("py-client");
    let fabric = support::connect(&domain, "calc", "rs1");
    let _server = CalcServer::new(RustCalc).workers(2).serve(&fabric).unwrap();

    let got = python_calls(&domain, "rs1");
    assert_eq!(got[0], json!({"call": "multiply", "result": 42}));
    assert_eq!(
        got[1],
        json!({"call": "describe", "result": {"name": "PY", "tags": ["a", "b"], "count": 2}})
    );
    assert_eq!(got[2], json!({"call": "health_check", "result": true}));
    // `Ok(42)` is the plain value, as a Python server returns it.
    assert_eq!(got[3], json!({"call": "divide", "result": 42}));
    // `Err` raises: an error without a Python class of its own is a JsonRPCError whose
    // body's type is the variant.
    assert_eq!(
        got[4]["raised"], "aio_pika.patterns.rpc.JsonRPCError",
        "{}",
        got[4]
    );
    assert_eq!(got[4]["type"], "DivError.DivisionByZero", "{}", got[4]);
    // An error named after a Python class is raised as that class.
    assert_eq!(got[5]["raised"], "builtins.ValueError", "{}", got[5]);
    assert!(
        got[5]["message"].as_str().unwrap().contains("negative"),
        "{}",
        got[5]
    );
    // Bad keyword arguments raise TypeError, naming the argument.
    for (outcome, argument) in [
        (&got[6], "unexpected keyword argument 'c'"),
        (&got[7], "missing required argument 'y'"),
        (&got[8], "argument 'x'"),
    ] {
        assert_eq!(outcome["raised"], "builtins.TypeError", "{outcome}");
        // Python shows the exception's arguments as a tuple, with its quotes escaped.
        let message = outcome["message"].as_str().unwrap().replace('\\', "");
        assert!(message.contains(argument), "{outcome}");
    }
    assert_eq!(
        got[9]["raised"], "aio_pika.exceptions.MessageProcessError",
        "{}",
        got[9]
    );
    assert_eq!(
        got[10]["raised"], "aio_pika.patterns.rpc.JsonRPCError",
        "{}",
        got[10]
    );
    assert_eq!(got[10]["type"], "panic", "{}", got[10]);
}

#[test]
fn a_python_client_sees_a_rust_server_as_it_sees_a_python_one() {
    support::python::hold_rpc_dlx();
    let domain = support::unique_domain("py-same");
    let fabric = support::connect(&domain, "calc", "rs1");
    let _server = CalcServer::new(RustCalc).workers(2).serve(&fabric).unwrap();
    let python_server = Peer::spawn("server.py", &[&domain, "calc", "py1"]);
    assert_eq!(python_server.next_line(), "ready");

    let rust = python_calls(&domain, "rs1");
    let python = python_calls(&domain, "py1");
    python_server.finish();

    let class = |outcome: &Value| outcome.get("raised").cloned();
    // Values, a renamed error, bad and missing arguments, unknown methods: the same.
    for index in [0, 1, 2, 3, 5, 6, 7, 9] {
        assert_eq!(
            (rust[index].get("result"), class(&rust[index])),
            (python[index].get("result"), class(&python[index])),
            "call {index}: Rust {} / Python {}",
            rust[index],
            python[index]
        );
    }
    // Where the two differ by design (the README's table says why): an error without a
    // Python class of its own, a mistyped argument (Python runs `"x" * 7`), a panic.
    assert_eq!(class(&python[4]), Some(json!("builtins.ZeroDivisionError")));
    assert_eq!(
        python[8]["result"],
        "not a numbernot a numbernot a numbernot a numbernot a numbernot a numbernot a number"
    );
    assert_eq!(class(&python[10]), Some(json!("builtins.RuntimeError")));
}

#[test]
fn a_python_callers_call_starts_a_trace_of_its_own_and_has_no_deadline() {
    support::python::hold_rpc_dlx();
    // A Python caller sends no `traceparent` and no deadline header: its call runs in a new
    // trace, without a parent, and with no deadline (the broker's `expiration` still drops
    // it once it has waited out its timeout in the queue).
    let domain = support::unique_domain("py-trace");
    let fabric = support::connect(&domain, "calc", "rs1");
    let _server = CalcServer::new(RustCalc).workers(2).serve(&fabric).unwrap();
    let got = python_calls_of(&domain, "rs1", json!([["seen", {}], ["seen", {}]]));
    let (first, second) = (&got[0]["result"], &got[1]["result"]);
    let trace_id = first[0].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "{first}");
    assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    assert_eq!(first[1], Value::Null, "{first}");
    assert_eq!(first[2], json!(false), "{first}");
    assert_ne!(second[0], first[0], "each call is a trace of its own");
}
