//! The `fabric` binary as a process against the real broker: it lists, describes and calls a
//! Rust service (served by this test process) and a Python amqp-fabric one, exits with the
//! documented codes, prints what other processes log and publish, and watches services come
//! and go.
//!
//! Every wait is for a line of output or an exit, bounded (`WAIT`); none is a fixed sleep.
//! The tests need RabbitMQ (`FABRIC_TEST_URL`, else the local one) and `python3` with
//! amqp-fabric; without them they fail, saying so.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, Fabric, FabricConfig, Headers, Server};
use serde_json::Value;

/// The longest a test waits for a line or an exit that should come.
const WAIT: Duration = Duration::from_secs(30);

#[fabric_service]
pub trait Acc {
    /// Multiplies two numbers.
    #[fabric(idempotent)]
    fn multiply(&self, x: i64, y: i64) -> i64;

    /// Sleeps `ms` milliseconds, then answers them.
    fn nap(&self, ms: u64) -> u64;

    /// Refuses zero.
    fn invert(&self, x: f64) -> Result<f64, String>;
}

struct Impl;

impl Acc for Impl {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
    fn nap(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
    fn invert(&self, x: f64) -> Result<f64, String> {
        if x == 0.0 {
            Err("zero has no inverse".to_owned())
        } else {
            Ok(1.0 / x)
        }
    }
}

fn broker_url() -> String {
    std::env::var("FABRIC_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A domain of this test's own.
fn unique_domain(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t-cli-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects a participant; no broker fails the test, saying what to do.
fn connect(config: FabricConfig) -> Fabric {
    Fabric::connect(config).unwrap_or_else(|e| {
        panic!(
            "these tests need RabbitMQ at {} (set FABRIC_TEST_URL to use another): {e}\n\
             start one with `bash ci/broker.sh`",
            broker_url()
        )
    })
}

/// Serves `Acc` at `domain/acc/one`, announcing every 300 ms.
fn serve(domain: &str) -> (Fabric, Server) {
    let fabric = connect(
        FabricConfig::new(&broker_url(), domain, "acc", "one")
            .keep_alive(Duration::from_millis(300)),
    );
    let server = AccServer::new(Impl).workers(2).serve(&fabric).unwrap();
    (fabric, server)
}

/// `fabric ARGS` run to its end.
fn fabric(args: &[&str]) -> Output {
    spawn(args).wait_with_output().expect("wait for fabric")
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fabric"))
        .args(args)
        .env("FABRIC_URL", broker_url())
        .env_remove("FABRIC_DOMAIN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fabric binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit status, showing both streams when it is not the one expected.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// A running `fabric` whose output lines arrive on channels.
struct Running {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = spawn(args);
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Running { child, out, err }
    }

    /// The first stdout line that passes `wanted`, within `WAIT`.
    fn stdout_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        wait_line(&self.out, what, wanted)
    }

    fn stderr_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        wait_line(&self.err, what, wanted)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("fabric ended before {what}; it printed: {seen:#?}")
            }
        }
    }
    panic!("no {what} within {WAIT:?}; fabric printed: {seen:#?}")
}

/// A Python amqp-fabric script; its stdout lines arrive on `lines`, and stdin stays open
/// until it is dropped (serving scripts stop then).
struct Python {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Python {
    fn spawn(script: &str, args: &[&str]) -> Python {
        let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let mut child = Command::new(&python)
            .arg(script)
            .arg(broker_url())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} {script}: {e}"));
        let lines = lines(child.stdout.take().unwrap());
        Python { child, lines }
    }

    fn expect(&self, line: &str) {
        wait_line(&self.lines, line, |l| l == line);
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn script(name: &str) -> String {
    format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test, saying what to do, when the broker is not there: run first in each test.
fn need_broker() {
    drop(connect(FabricConfig::new(
        &broker_url(),
        "t-cli",
        "probe",
        "p1",
    )));
}

#[test]
fn a_rust_service_is_listed_described_and_called() {
    need_broker();
    let domain = unique_domain("rust");
    let (_fabric, _server) = serve(&domain);
    let service = format!("{domain}/acc/one");

    let listed = fabric(&["services", "--domain", &domain, "--json", "--wait", "1s"]);
    assert_exit(&listed, 0);
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let entry = &listed[0];
    assert_eq!(entry["service"], service.as_str(), "{listed}");
    assert_eq!(entry["pid"], std::process::id());
    assert_eq!(entry["workers"], 2);
    assert_eq!(
        entry["contract_hash"],
        AccClient::contract().hash().to_string()
    );

    let table = fabric(&["services", "--domain", &domain, "--wait", "1s"]);
    assert_exit(&table, 0);
    let table = stdout(&table);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains(&service), "{table}");

    let described = fabric(&["describe", &service]);
    assert_exit(&described, 0);
    let text = stdout(&described);
    assert!(
        text.contains(&format!("contract  {}", AccClient::contract().hash())),
        "{text}"
    );
    assert!(
        text.contains("multiply(x: i64, y: i64) -> i64  [idempotent]"),
        "{text}"
    );
    assert!(text.contains("Multiplies two numbers."), "{text}");
    assert!(
        text.contains("invert(x: f64) -> Result<f64, String>"),
        "{text}"
    );

    let product = fabric(&["call", &service, "multiply", "x=5", "y=7"]);
    assert_exit(&product, 0);
    assert_eq!(stdout(&product), "35\n");
    let product = fabric(&["call", &service, "multiply", "--args", r#"{"x": 6}"#, "y=7"]);
    assert_exit(&product, 0);
    assert_eq!(stdout(&product), "42\n");
}

#[test]
fn errors_have_their_exit_codes() {
    need_broker();
    let domain = unique_domain("errors");
    let (_fabric, _server) = serve(&domain);
    let service = format!("{domain}/acc/one");

    // Bad arguments: a wrong name, caught by the contract before sending.
    let wrong = fabric(&["call", &service, "multiply", "a=5", "y=7"]);
    assert_exit(&wrong, 6);
    assert_eq!(
        stderr(&wrong),
        "fabric: `multiply` has no parameter `a`: it takes (x: i64, y: i64)\n"
    );
    assert!(stdout(&wrong).is_empty());
    // ... and refused by the service itself when the check is skipped.
    let refused = fabric(&["call", &service, "multiply", "a=5", "y=7", "--no-check"]);
    assert_exit(&refused, 6);
    // Unknown method.
    let unknown = fabric(&["call", &service, "divide", "x=1"]);
    assert_exit(&unknown, 5);
    assert!(
        stderr(&unknown).contains("has no method `divide`"),
        "{}",
        stderr(&unknown)
    );
    // The service's own error.
    let failed = fabric(&["call", &service, "invert", "x=0"]);
    assert_exit(&failed, 8);
    assert!(
        stderr(&failed).contains("zero has no inverse"),
        "{}",
        stderr(&failed)
    );
    // Timeout.
    let slow = fabric(&["call", &service, "nap", "ms=3000", "--timeout", "300ms"]);
    assert_exit(&slow, 7);
    assert!(
        stderr(&slow).contains("no reply within"),
        "{}",
        stderr(&slow)
    );
    // No such service.
    let missing = format!("{domain}/acc/nobody");
    let nobody = fabric(&["call", &missing, "multiply", "x=1", "y=2", "--wait", "0s"]);
    assert_exit(&nobody, 4);
    assert_eq!(stderr(&nobody).lines().count(), 1, "{}", stderr(&nobody));
    let nobody = fabric(&["describe", &missing, "--wait", "1s"]);
    assert_exit(&nobody, 4);
    // A malformed address, and an unreachable broker: one line each, never a panic.
    let malformed = fabric(&["call", "no-slashes", "multiply"]);
    assert_exit(&malformed, 2);
    assert!(stderr(&malformed).contains("DOMAIN/TYPE/ID"));
    let unreachable = fabric(&["--url", "amqp://guest:guest@127.0.0.1:1/%2f", "services"]);
    assert_exit(&unreachable, 3);
    assert_eq!(
        stderr(&unreachable).lines().count(),
        1,
        "{}",
        stderr(&unreachable)
    );
    assert!(!stderr(&unreachable).contains("panicked"));
}

#[test]
fn a_python_service_is_listed_described_and_called() {
    need_broker();
    let domain = unique_domain("python");
    let python = Python::spawn(
        &script("tests/python/acc_service.py"),
        &[&domain, "acc", "py"],
    );
    python.expect("ready");
    let service = format!("{domain}/acc/py");

    let listed = fabric(&["services", "--domain", &domain, "--json", "--wait", "2s"]);
    assert_exit(&listed, 0);
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed[0]["service"], service.as_str(), "{listed}");
    assert_eq!(listed[0]["contract"], Value::Null);

    let described = fabric(&["describe", &service]);
    assert_exit(&described, 0);
    assert!(
        stdout(&described).contains("contract  none announced"),
        "{}",
        stdout(&described)
    );

    // No contract: sent as given, and the Python service answers.
    let product = fabric(&["call", &service, "multiply", "x=5", "y=7"]);
    assert_exit(&product, 0);
    assert_eq!(stdout(&product), "35\n");
    let wrong = fabric(&["call", &service, "multiply", "a=5", "y=7"]);
    assert_exit(&wrong, 6);
    assert!(
        stderr(&wrong).contains("unexpected keyword argument 'a'"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn logs_print_what_another_process_ships() {
    need_broker();
    let domain = unique_domain("logs");
    let service = format!("{domain}/py_logger/l1");
    let logs = Running::start(&[
        "logs",
        "--service",
        &service,
        "--level",
        "warning",
        "--count",
        "2",
    ]);
    logs.stderr_line("the logs subscription", |l| l.contains("printing the logs"));
    let python = Python::spawn(
        &format!(
            "{}/../fabric-core/tests/python/log_records.py",
            env!("CARGO_MANIFEST_DIR")
        ),
        &[&domain, "py_logger", "l1"],
    );
    python.expect("done");
    let first = logs.stdout_line("a warning", |l| !l.is_empty());
    assert!(
        first.contains("WARNING") && first.contains("py_logger/l1"),
        "{first}"
    );
    let second = logs.stdout_line("an error", |l| !l.is_empty());
    assert!(second.contains("ERROR"), "{second}");
}

#[test]
fn data_and_events_print_what_another_process_publishes() {
    need_broker();
    let domain = unique_domain("data");
    let data = Running::start(&[
        "data",
        "--domain",
        &domain,
        "--header",
        "kind=reading",
        "--count",
        "1",
    ]);
    data.stderr_line("the data subscription", |l| {
        l.contains("following the data")
    });
    let events = Running::start(&[
        "events", "--domain", &domain, "order.*", "--json", "--count", "1",
    ]);
    events.stderr_line("the events subscription", |l| {
        l.contains("following the events")
    });

    let publisher = connect(
        FabricConfig::new(&broker_url(), &domain, "sensor", "s1").codec(fabric_core::Codec::Json),
    );
    publisher
        .publish_data(
            br#"{"celsius": 21.5}"#,
            &Headers::new().with("kind", "other"),
        )
        .unwrap()
        .wait()
        .unwrap();
    publisher
        .publish_data(
            br#"{"celsius": 22.5}"#,
            &Headers::new().with("kind", "reading"),
        )
        .unwrap()
        .wait()
        .unwrap();
    let line = data.stdout_line("a data message", |l| !l.is_empty());
    assert_eq!(line, r#"sensor/s1 kind=reading {"celsius":22.5}"#);

    let published = fabric(&[
        "publish-event",
        "--domain",
        &domain,
        "order.created",
        r#"{"id": 7}"#,
    ]);
    assert_exit(&published, 0);
    let line = events.stdout_line("an event", |l| !l.is_empty());
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["topic"], "order.created");
    assert_eq!(event["body"]["id"], 7);
}

#[test]
fn watch_shows_a_service_appear_and_leave() {
    need_broker();
    let domain = unique_domain("watch");
    let watch = Running::start(&["services", "--watch", "--domain", &domain]);
    watch.stderr_line("the watch", |l| l.contains("watching"));
    let (fabric, server) = serve(&domain);
    let service = format!("{domain}/acc/one");
    watch.stdout_line("the service appearing", |l| {
        l.starts_with("+ appeared") && l.contains(&service)
    });
    server.close().unwrap();
    fabric.close().unwrap();
    watch.stdout_line("the service leaving", |l| {
        l.starts_with("- left") && l.contains(&service)
    });
}

#[test]
fn completions_and_help_are_printed() {
    let bash = fabric(&["completions", "bash"]);
    assert_exit(&bash, 0);
    assert!(stdout(&bash).contains("_fabric"));
    let help = fabric(&["--help"]);
    assert_exit(&help, 0);
    assert!(stdout(&help).contains("Exit status:"));
}
