//! What the gateway's tests share: a test service (`Calc`) served against the real broker,
//! a gateway over a fabric that has heard it, and requests made to the router in process.
//!
//! The tests need RabbitMQ (`FABRIC_TEST_URL`, else the local one); without it they fail,
//! saying so. Every wait is bounded (`WAIT`) and waits for something, never a fixed sleep.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use fabric_core::{fabric_service, Codec, Fabric, FabricConfig, Server, ServiceFilter};
use fabric_gateway::{Gateway, GatewayConfig};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;

/// The longest a test waits for something that should come.
pub const WAIT: Duration = Duration::from_secs(20);

/// Why a division failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DivError {
    /// The divisor was zero.
    DivisionByZero,
}

impl std::fmt::Display for DivError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("division by zero")
    }
}

/// The methods of the JSON-RPC 2.0 specification's examples, and a few more.
#[fabric_service]
pub trait Calc {
    /// Subtracts `subtrahend` from `minuend`.
    fn subtract(&self, minuend: i64, subtrahend: i64) -> i64;

    /// Adds three numbers.
    fn sum(&self, a: i64, b: i64, c: i64) -> i64;

    /// Records five numbers (the specification's notification).
    fn update(&self, a: i64, b: i64, c: i64, d: i64, e: i64);

    /// Says hello (a notification in the specification's batch).
    fn notify_hello(&self, value: i64);

    /// Some data of mixed types.
    fn get_data(&self) -> Vec<serde_json::Value>;

    /// Divides `a` by `b`, refusing zero.
    fn divide(&self, a: f64, b: f64) -> Result<f64, DivError>;

    /// Sleeps `ms` milliseconds, then answers them.
    fn nap(&self, ms: u64) -> u64;

    /// Greets, `times` times (default once).
    fn greet(&self, name: String, times: Option<u32>) -> Vec<String>;

    /// The trace id this call runs in.
    fn trace_id(&self) -> String;
}

/// The service; what notifications did is kept in `seen`.
#[derive(Clone, Default)]
pub struct Impl {
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Calc for Impl {
    fn subtract(&self, minuend: i64, subtrahend: i64) -> i64 {
        minuend - subtrahend
    }
    fn sum(&self, a: i64, b: i64, c: i64) -> i64 {
        a + b + c
    }
    fn update(&self, a: i64, b: i64, c: i64, d: i64, e: i64) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("update {a} {b} {c} {d} {e}"));
    }
    fn notify_hello(&self, value: i64) {
        self.seen.lock().unwrap().push(format!("hello {value}"));
    }
    fn get_data(&self) -> Vec<serde_json::Value> {
        vec!["hello".into(), 5.into()]
    }
    fn divide(&self, a: f64, b: f64) -> Result<f64, DivError> {
        if b == 0.0 {
            Err(DivError::DivisionByZero)
        } else {
            Ok(a / b)
        }
    }
    fn nap(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
    fn greet(&self, name: String, times: Option<u32>) -> Vec<String> {
        (0..times.unwrap_or(1))
            .map(|_| format!("hello, {name}"))
            .collect()
    }
    fn trace_id(&self) -> String {
        fabric_core::CallContext::current()
            .map(|call| call.trace_id().to_owned())
            .unwrap_or_default()
    }
}

pub fn broker_url() -> String {
    std::env::var("FABRIC_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A domain of this test's own.
pub fn unique_domain(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t-gw-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects a participant; no broker fails the test, saying what to do.
pub fn connect(config: FabricConfig) -> Fabric {
    Fabric::connect(config).unwrap_or_else(|e| {
        panic!(
            "these tests need RabbitMQ at {} (set FABRIC_TEST_URL to use another): {e}\n\
             start one with `bash ci/broker.sh`",
            broker_url()
        )
    })
}

/// A `Calc` served at `{domain}/calc/c1`, and a gateway over a fabric that has heard its
/// contract.
pub struct World {
    pub domain: String,
    pub service: Impl,
    pub gateway: Gateway,
    pub router: Router,
    _server: Server,
    _server_fabric: Fabric,
}

impl World {
    pub fn new(test: &str, config: GatewayConfig) -> World {
        let domain = unique_domain(test);
        let server_fabric = connect(
            FabricConfig::new(&broker_url(), &domain, "calc", "c1")
                .keep_alive(Duration::from_millis(300)),
        );
        let service = Impl::default();
        let server = CalcServer::new(service.clone())
            .workers(4)
            .serve(&server_fabric)
            .expect("serve Calc");
        let gateway = gateway(&domain, config);
        wait_for_contract(gateway.fabric(), &domain, "calc", "c1");
        let router = gateway.router();
        World {
            domain,
            service,
            gateway,
            router,
            _server: server,
            _server_fabric: server_fabric,
        }
    }
}

/// A gateway over a fabric of its own in `domain` that listens to keep-alives.
pub fn gateway(domain: &str, config: GatewayConfig) -> Gateway {
    let fabric = connect(
        FabricConfig::new(&broker_url(), domain, "fabric_gateway", "gw")
            .codec(Codec::Json)
            .keep_alive_listen(true),
    );
    Gateway::new(fabric, config)
}

/// Waits until `fabric` has heard a keep-alive of `domain/type/id` with its contract.
pub fn wait_for_contract(fabric: &Fabric, domain: &str, service_type: &str, id: &str) {
    wait_for_service(fabric, domain, service_type, id, true);
}

/// Waits until `fabric` has heard a keep-alive of `domain/type/id` (with a contract when
/// `contract`).
pub fn wait_for_service(
    fabric: &Fabric,
    domain: &str,
    service_type: &str,
    id: &str,
    contract: bool,
) {
    let filter = ServiceFilter::any()
        .domain(domain)
        .service_type(service_type)
        .service_id(id);
    let events = fabric.service_events(&filter).expect("watch services");
    let deadline = Instant::now() + WAIT;
    loop {
        let heard = fabric.list_services(&filter).expect("list services");
        if heard
            .iter()
            .any(|info| !contract || info.contract().is_some())
        {
            return;
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| {
                panic!("no keep-alive of {domain}/{service_type}/{id} within {WAIT:?}")
            });
        let _ = events.recv_timeout(left).expect("service events");
    }
}

/// A response: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `request` to `router` in process.
pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = tokio::time::timeout(WAIT, router.clone().oneshot(request))
        .await
        .expect("a response within WAIT")
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read the body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// `POST uri` with `body` as JSON.
pub async fn post(router: &Router, uri: &str, body: &str) -> Reply {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(router, request).await
}

/// `GET uri`.
pub async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A Python amqp-fabric service (the `fabric` command's test service: `multiply(x, y)`,
/// `nap(seconds)`), stopped when dropped.
pub struct Python {
    child: Child,
}

impl Python {
    pub fn serve(domain: &str, service_type: &str, id: &str) -> Python {
        let script = format!(
            "{}/../fabric-cli/tests/python/acc_service.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .arg(&script)
            .args([&broker_url(), domain, service_type, id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {python} {script} (amqp-fabric is needed): {e}")
            });
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        match lines.recv_timeout(WAIT) {
            Ok(line) if line == "ready" => {}
            other => panic!("the Python service did not get ready: {other:?}"),
        }
        Python { child }
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
