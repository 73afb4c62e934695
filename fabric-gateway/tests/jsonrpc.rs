//! JSON-RPC 2.0 through the gateway, against a real service: the specification's examples
//! (<https://www.jsonrpc.org/specification>, section 7) adapted to the test service, then
//! the gateway's own server errors.

mod common;

use std::time::{Duration, Instant};

use common::{post, Python, World, WAIT};
use fabric_gateway::GatewayConfig;
use serde_json::{json, Value};

/// What the specification sends, and what it answers (`None`: nothing, HTTP 204).
struct Case {
    name: &'static str,
    send: &'static str,
    answer: Option<Value>,
}

fn spec_examples() -> Vec<Case> {
    vec![
        Case {
            name: "positional parameters",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
            answer: Some(json!({"jsonrpc": "2.0", "result": 19, "id": 1})),
        },
        Case {
            name: "positional parameters, the other way",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
            answer: Some(json!({"jsonrpc": "2.0", "result": -19, "id": 2})),
        },
        Case {
            name: "named parameters",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
            answer: Some(json!({"jsonrpc": "2.0", "result": 19, "id": 3})),
        },
        Case {
            name: "named parameters, the other order",
            send: r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
            answer: Some(json!({"jsonrpc": "2.0", "result": 19, "id": 4})),
        },
        Case {
            name: "a notification",
            send: r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
            answer: None,
        },
        Case {
            name: "a notification of a method that does not exist",
            send: r#"{"jsonrpc": "2.0", "method": "foobar"}"#,
            answer: None,
        },
        Case {
            name: "a method that does not exist",
            send: r#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
            answer: Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "service {domain}.calc.c1 has no method `foobar`"}, "id": "1"}),
            ),
        },
        Case {
            name: "invalid JSON",
            send: r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#,
            answer: Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}),
            ),
        },
        Case {
            name: "an invalid Request object",
            send: r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
            answer: Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: `method` must be a string"}, "id": null}),
            ),
        },
        Case {
            name: "a batch, invalid JSON",
            send: r#"[
              {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
              {"jsonrpc": "2.0", "method"
            ]"#,
            answer: Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}),
            ),
        },
        Case {
            name: "an empty array",
            send: "[]",
            answer: Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: an empty batch"}, "id": null}),
            ),
        },
        Case {
            name: "an invalid batch, but not empty",
            send: "[1]",
            answer: Some(json!([
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: not an object"}, "id": null}
            ])),
        },
        Case {
            name: "an invalid batch",
            send: "[1,2,3]",
            answer: Some(json!([
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: not an object"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: not an object"}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: not an object"}, "id": null}
            ])),
        },
        Case {
            name: "a batch",
            send: r#"[
              {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
              {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
              {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
              {"foo": "boo"},
              {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
              {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
            ]"#,
            answer: Some(json!([
                {"jsonrpc": "2.0", "result": 7, "id": "1"},
                {"jsonrpc": "2.0", "result": 19, "id": "2"},
                {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request: `jsonrpc` must be \"2.0\""}, "id": null},
                {"jsonrpc": "2.0", "error": {"code": -32601, "message": "service {domain}.calc.c1 has no method `foo.get`"}, "id": "5"},
                {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
            ])),
        },
        Case {
            name: "a batch of notifications only",
            send: r#"[
              {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4]},
              {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
            ]"#,
            answer: None,
        },
    ]
}

/// Puts the test's domain where an expected message names the service.
fn with_domain(value: &Value, domain: &str) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace("{domain}", domain)),
        Value::Array(items) => Value::Array(items.iter().map(|v| with_domain(v, domain)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_domain(v, domain)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specifications_examples() {
    let world = World::new("spec", GatewayConfig::default());
    let uri = format!("/jsonrpc/{}/calc/c1", world.domain);
    for case in spec_examples() {
        let reply = post(&world.router, &uri, case.send).await;
        match &case.answer {
            None => {
                assert_eq!(
                    reply.status.as_u16(),
                    204,
                    "{}: {}",
                    case.name,
                    String::from_utf8_lossy(&reply.body)
                );
                assert!(reply.body.is_empty(), "{}: a 204 has no body", case.name);
            }
            Some(expected) => {
                assert_eq!(reply.status.as_u16(), 200, "{}", case.name);
                assert_eq!(
                    reply.headers["content-type"], "application/json",
                    "{}",
                    case.name
                );
                assert_eq!(
                    reply.json(),
                    with_domain(expected, &world.domain),
                    "{}",
                    case.name
                );
            }
        }
    }
    // The notifications were made, though nothing was answered.
    let seen = world.service.seen.lock().unwrap().clone();
    assert!(seen.contains(&"update 1 2 3 4 5".to_owned()), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| *s == "hello 7").count(),
        2,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_params_and_the_servers_own_errors() {
    let world = World::new(
        "errors",
        GatewayConfig::default().max_timeout(Duration::from_millis(400)),
    );
    let uri = format!("/jsonrpc/{}/calc/c1", world.domain);
    let call = |body: &'static str| post(&world.router, &uri, body);

    // Too many by position: -32602 before anything is sent.
    let reply = call(r#"{"jsonrpc": "2.0", "method": "subtract", "params": [1, 2, 3], "id": 1}"#)
        .await
        .json();
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert_eq!(reply["id"], 1);
    // A parameter of the wrong type: the service refuses it, -32602.
    let reply = call(r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": "x", "subtrahend": 1}, "id": 2}"#).await.json();
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    // An Option may be left out; given by position it is mapped like the rest.
    let reply = call(r#"{"jsonrpc": "2.0", "method": "greet", "params": ["ann"], "id": 3}"#)
        .await
        .json();
    assert_eq!(reply["result"], json!(["hello, ann"]), "{reply}");
    let reply = call(r#"{"jsonrpc": "2.0", "method": "greet", "params": ["ann", 2], "id": 4}"#)
        .await
        .json();
    assert_eq!(
        reply["result"],
        json!(["hello, ann", "hello, ann"]),
        "{reply}"
    );

    // The method's own error: -32002 with its type and value.
    let reply = call(r#"{"jsonrpc": "2.0", "method": "divide", "params": [1, 0], "id": 5}"#)
        .await
        .json();
    assert_eq!(reply["error"]["code"], -32002, "{reply}");
    assert_eq!(
        reply["error"]["data"]["type"], "DivError.DivisionByZero",
        "{reply}"
    );
    assert_eq!(reply["error"]["data"]["value"], "DivisionByZero", "{reply}");
    let reply =
        call(r#"{"jsonrpc": "2.0", "method": "divide", "params": {"a": 1, "b": 4}, "id": 6}"#)
            .await
            .json();
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 0.25, "id": 6}));

    // A timeout, capped by the gateway's maximum whatever the request asks: -32001.
    let started = Instant::now();
    let reply = post(
        &world.router,
        &format!("{uri}?timeout=10s"),
        r#"{"jsonrpc": "2.0", "method": "nap", "params": [3000], "id": 7}"#,
    )
    .await
    .json();
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "capped at 400 ms: {:?}",
        started.elapsed()
    );

    // No such service: -32000, for each request of a batch.
    let ghost = format!("/jsonrpc/{}/ghost/g1", world.domain);
    let reply = post(
        &world.router,
        &ghost,
        r#"[{"jsonrpc": "2.0", "method": "x", "id": 1}, {"jsonrpc": "2.0", "method": "y", "id": 2}]"#,
    )
    .await
    .json();
    assert_eq!(reply[0]["error"]["code"], -32000, "{reply}");
    assert_eq!(reply[1]["error"]["code"], -32000, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_contract_takes_params_by_name_only() {
    let domain = common::unique_domain("python");
    let _python = Python::serve(&domain, "acc", "py1");
    let gateway = common::gateway(&domain, GatewayConfig::default());
    common::wait_for_service(gateway.fabric(), &domain, "acc", "py1", false);
    let router = gateway.router();
    let uri = format!("/jsonrpc/{domain}/acc/py1");
    let reply = post(
        &router,
        &uri,
        r#"{"jsonrpc": "2.0", "method": "multiply", "params": {"x": 6, "y": 7}, "id": 1}"#,
    )
    .await
    .json();
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 42, "id": 1}));
    let reply = post(
        &router,
        &uri,
        r#"{"jsonrpc": "2.0", "method": "multiply", "params": [6, 7], "id": 2}"#,
    )
    .await
    .json();
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("announces no contract"),
        "{reply}"
    );
    let _ = WAIT;
}
