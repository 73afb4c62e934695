//! REST, the registry, OpenAPI, events and the safety defaults, through the router in
//! process against a real service.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::{get, post, send, World, WAIT};
use fabric_gateway::GatewayConfig;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_answer_with_the_status_of_each_outcome() {
    let world = World::new(
        "rest",
        GatewayConfig::default().max_timeout(Duration::from_millis(400)),
    );
    let base = format!("/services/{}/calc/c1", world.domain);
    let router = &world.router;

    let ok = post(
        router,
        &format!("{base}/subtract"),
        r#"{"minuend": 42, "subtrahend": 23}"#,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!(19));
    let ok = post(router, &format!("{base}/greet"), r#"{"name": "bo"}"#).await;
    assert_eq!(ok.json(), json!(["hello, bo"]));
    let ok = post(router, &format!("{base}/get_data"), "").await;
    assert_eq!(
        ok.json(),
        json!(["hello", 5]),
        "an empty body is no arguments"
    );

    let bad = post(
        router,
        &format!("{base}/subtract"),
        r#"{"minuend": "x", "subtrahend": 1}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "bad_arguments");
    let bad = post(router, &format!("{base}/subtract"), "[42, 23]").await;
    assert_eq!(bad.status, 400, "a body that is not an object");
    let bad = post(router, &format!("{base}/subtract?timeout=soon"), "{}").await;
    assert_eq!(bad.status, 400, "a timeout that does not read");

    let missing = post(router, &format!("{base}/foobar"), "{}").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "unknown_method");

    let own = post(router, &format!("{base}/divide"), r#"{"a": 1, "b": 0}"#).await;
    assert_eq!(own.status, 422);
    let error = &own.json()["error"];
    assert_eq!(error["type"], "DivError.DivisionByZero", "{error}");
    assert_eq!(error["value"], "DivisionByZero", "{error}");

    let nobody = post(
        router,
        &format!("/services/{}/ghost/g1/anything", world.domain),
        "{}",
    )
    .await;
    assert_eq!(nobody.status, 503);
    assert_eq!(nobody.json()["error"]["code"], "no_such_service");

    // The header's timeout, then the query's; both capped by the maximum.
    let request = Request::post(format!("{base}/nap"))
        .header("x-fabric-timeout", "150ms")
        .body(Body::from(r#"{"ms": 2000}"#))
        .unwrap();
    let started = Instant::now();
    let slow = send(router, request).await;
    assert_eq!(slow.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let slow = post(router, &format!("{base}/nap?timeout=1m"), r#"{"ms": 3000}"#).await;
    assert_eq!(slow.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "capped at 400 ms: {:?}",
        started.elapsed()
    );
    let fast = post(router, &format!("{base}/nap?timeout=5s"), r#"{"ms": 10}"#).await;
    assert_eq!(fast.json(), json!(10), "capped, but long enough");

    // `traceparent` passed through: the service runs in the caller's trace.
    let traced = Request::post(format!("{base}/trace_id"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(router, traced).await.json(),
        json!("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let traced = Request::post(format!("/jsonrpc/{}/calc/c1", world.domain))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(Body::from(
            r#"{"jsonrpc": "2.0", "method": "trace_id", "id": 1}"#,
        ))
        .unwrap();
    assert_eq!(
        send(router, traced).await.json()["result"],
        "0af7651916cd43dd8448eb211c80319c"
    );
    let untraced = post(router, &format!("{base}/trace_id"), "").await.json();
    assert_eq!(
        untraced.as_str().map(str::len),
        Some(32),
        "a new trace otherwise: {untraced}"
    );
    assert_ne!(untraced, json!("4bf92f3577b34da6a3ce929d0e0e4736"));

    // The gateway's broker connection gone: 502, and -32003 over JSON-RPC.
    world
        .gateway
        .fabric()
        .close()
        .expect("close the gateway's fabric");
    let gone = post(
        router,
        &format!("{base}/subtract"),
        r#"{"minuend": 1, "subtrahend": 1}"#,
    )
    .await;
    assert_eq!(gone.status, 502, "{}", String::from_utf8_lossy(&gone.body));
    assert_eq!(gone.json()["error"]["code"], "connection_lost");
    let gone = post(
        router,
        &format!("/jsonrpc/{}/calc/c1", world.domain),
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [1, 1], "id": 1}"#,
    )
    .await;
    assert_eq!(gone.json()["error"]["code"], -32003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_openapi_come_from_the_live_contracts() {
    let world = World::new("openapi", GatewayConfig::default());
    let services = get(&world.router, "/services").await;
    assert_eq!(services.status, 200);
    let services = services.json();
    let calc = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["domain"] == world.domain.as_str() && s["type"] == "calc")
        .unwrap_or_else(|| panic!("calc is not listed: {services}"));
    assert_eq!(calc["service"], format!("{}/calc/c1", world.domain));
    assert_eq!(calc["contract"]["service"], "Calc");

    let doc = get(&world.router, "/openapi.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for method in [
        "subtract",
        "sum",
        "update",
        "notify_hello",
        "get_data",
        "divide",
        "nap",
        "greet",
    ] {
        let path = format!("/services/{}/calc/c1/{method}", world.domain);
        assert!(
            doc["paths"].get(&path).is_some(),
            "no operation for {method}"
        );
    }
    let greet = &doc["paths"][format!("/services/{}/calc/c1/greet", world.domain)]["post"];
    let body = &greet["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["required"],
        json!(["name"]),
        "an Option may be left out"
    );
    assert_eq!(
        body["properties"]["times"]["anyOf"][1],
        json!({"type": "null"})
    );
    assert_eq!(
        greet["responses"]["200"]["content"]["application/json"]["schema"]["items"]["type"],
        "string"
    );
    assert_eq!(greet["summary"], "Greets, `times` times (default once).");
    validate_openapi(&doc);
}

/// Validates `doc` with the Python openapi-spec-validator (ci/test.sh installs it).
fn validate_openapi(doc: &Value) {
    let path = std::env::temp_dir().join(format!(
        "fabric-gateway-openapi-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, doc.to_string()).unwrap();
    let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(open(sys.argv[1])))\n\
             print('valid')",
        ])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document (install it with \
         `python3 -m pip install openapi-spec-validator` if it is missing):\n{}\n{doc}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_and_streamed_as_server_sent_events() {
    let world = World::new("events", GatewayConfig::default());
    // Another domain than the gateway's own: it gets a participant of its own.
    let other = common::unique_domain("events-other");
    for domain in [world.domain.clone(), other] {
        let request = Request::get(format!("/events/{domain}?topic=order.*"))
            .body(Body::empty())
            .unwrap();
        let response = world.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body();
        let mut seen = String::new();
        read_until(&mut body, &mut seen, "event: ready").await;
        let published = post(
            &world.router,
            &format!("/events/{domain}/user.created"),
            r#"{"id": 1}"#,
        )
        .await;
        assert_eq!(published.status, 202, "not bound, so not streamed");
        let published = post(
            &world.router,
            &format!("/events/{domain}/order.placed"),
            r#"{"order": 7}"#,
        )
        .await;
        assert_eq!(published.status, 202);
        assert_eq!(published.json(), json!({"published": true}));
        read_until(&mut body, &mut seen, "order.placed").await;
        let line = seen
            .lines()
            .find(|line| line.contains("order.placed"))
            .unwrap()
            .trim_start_matches("data: ");
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["routing_key"], "order.placed");
        assert_eq!(event["body"], json!({"order": 7}));
        assert!(!seen.contains("user.created"), "{seen}");
    }
    let bad = post(
        &world.router,
        &format!("/events/{}/order.*", world.domain),
        "{}",
    )
    .await;
    assert_eq!(bad.status, 400, "a pattern is no routing key");
}

/// Reads the stream into `seen` until it holds `wanted`.
async fn read_until(body: &mut Body, seen: &mut String, wanted: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains(wanted) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no `{wanted}` within {WAIT:?}: {seen}"))
            .expect("the stream goes on")
            .expect("a frame");
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_by_default_token_body_limit_and_cors() {
    let world = World::new(
        "safety",
        GatewayConfig::default().token("s3cret").max_body(1024),
    );
    let router = &world.router;
    let uri = format!("/services/{}/calc/c1/subtract", world.domain);
    let args = r#"{"minuend": 2, "subtrahend": 1}"#;

    let refused = post(router, &uri, args).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
    for path in ["/services", "/openapi.json"] {
        assert_eq!(get(router, path).await.status, 401, "{path}");
    }
    let wrong = Request::post(&uri)
        .header("authorization", "Bearer guess")
        .body(Body::from(args))
        .unwrap();
    assert_eq!(send(router, wrong).await.status, 401);
    let right = Request::post(&uri)
        .header("authorization", "Bearer s3cret")
        .body(Body::from(args))
        .unwrap();
    let right = send(router, right).await;
    assert_eq!(right.status, 200);
    assert_eq!(right.json(), json!(1));
    assert!(
        right.headers.get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
    assert_eq!(
        get(router, "/").await.status,
        200,
        "the page itself holds no data"
    );

    let big = format!(
        r#"{{"minuend": 2, "subtrahend": 1, "pad": "{}"}}"#,
        "x".repeat(4096)
    );
    let too_big = Request::post(&uri)
        .header("authorization", "Bearer s3cret")
        .body(Body::from(big))
        .unwrap();
    assert_eq!(send(router, too_big).await.status, 413);

    let nowhere = get(router, "/nowhere").await;
    assert_eq!(nowhere.status, 404);

    // CORS when asked for, for that origin only.
    let cors = common::gateway(
        &world.domain,
        GatewayConfig::default().cors_origin("https://app.example"),
    );
    let router = cors.router();
    let preflight = Request::options(&uri)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let preflight = send(&router, preflight).await;
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let elsewhere = Request::get("/services")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let elsewhere = send(&router, elsewhere).await;
    assert!(elsewhere
        .headers
        .get("access-control-allow-origin")
        .is_none());
}
