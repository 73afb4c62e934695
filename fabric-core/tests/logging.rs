//! Remote logging against a real broker: the wire format, subscriber filters, Python's
//! handler, and drops when the queue overflows. A flood of logs with the broker gone, and
//! shipping across a broker restart, are in `faults_streams.rs` (on a private node).

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_core::{Fabric, LogFilter, LogLevel, LogRecord, RemoteLogger, Subscription};
use log::{Level, LevelFilter, Log, Metadata, Record};

/// How long a record may take to arrive before the test fails.
const ARRIVAL: Duration = Duration::from_secs(30);

/// A subscription whose records arrive on a channel.
fn tail(fabric: &Fabric, filter: &LogFilter) -> (Subscription, Receiver<LogRecord>) {
    let (sender, records) = mpsc::channel();
    let subscription = fabric
        .subscribe_logs(filter, move |record| {
            let _ = sender.send(record);
        })
        .expect("subscribe to the domain's logs");
    (subscription, records)
}

fn next(records: &Receiver<LogRecord>) -> LogRecord {
    match records.recv_timeout(ARRIVAL) {
        Ok(record) => record,
        Err(RecvTimeoutError::Timeout) => panic!("no log record arrived within {ARRIVAL:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("the log subscription ended"),
    }
}

/// Logs one record through `logger` (not installed globally) as the `log` macros would,
/// from a known place.
fn emit(logger: &dyn Log, level: Level, target: &str, message: &str) {
    logger.log(
        &Record::builder()
            .level(level)
            .target(target)
            .module_path_static(Some("logging_test::orders"))
            .file_static(Some("tests/orders.rs"))
            .line(Some(7))
            .args(format_args!("{message}"))
            .build(),
    );
}

fn logger(fabric: &Fabric, level: LevelFilter) -> RemoteLogger {
    RemoteLogger::builder(fabric)
        .level(level)
        .build()
        .expect("start a remote logger")
}

#[test]
fn records_at_every_level_arrive_with_amqp_fabric_headers() {
    let domain = support::unique_domain("log-levels");
    let fabric = support::connect(&domain, "shop", "s1");
    let (_tail, records) = tail(&fabric, &LogFilter::new());
    let logger = logger(&fabric, LevelFilter::Trace);

    let levels = [
        (Level::Trace, LogLevel::Debug, "DEBUG"),
        (Level::Debug, LogLevel::Debug, "DEBUG"),
        (Level::Info, LogLevel::Info, "INFO"),
        (Level::Warn, LogLevel::Warning, "WARNING"),
        (Level::Error, LogLevel::Error, "ERROR"),
    ];
    for (level, _, _) in levels {
        emit(
            &logger,
            level,
            "shop::orders",
            &format!("{level} \"record\" ü"),
        );
    }
    assert!(logger.flush_within(ARRIVAL));

    for (level, python_level, name) in levels {
        let record = next(&records);
        assert_eq!(record.level(), Some(python_level));
        assert_eq!(record.level_name(), name);
        assert_eq!(record.rust_level(), Some(level));
        assert_eq!(record.message(), format!("{level} \"record\" ü"));
        assert_eq!(record.service_type(), Some("shop"));
        assert_eq!(record.service_id(), Some("s1"));
        assert_eq!(record.target(), Some("shop::orders"));
        assert_eq!(record.module(), Some("logging_test::orders"));
        assert_eq!(record.file(), Some("tests/orders.rs"));
        assert_eq!(record.line(), Some(7));
        assert_eq!(record.dropped(), 0);
        assert!(record.timestamp().is_some());

        // The raw message, as any consumer (a Python one) sees it.
        let headers = record.headers();
        assert_eq!(headers.get_str("service_id"), Some("s1"));
        assert_eq!(headers.get_str("service_type"), Some("shop"));
        assert_eq!(headers.get_str("level_name"), Some(name));
        assert_eq!(headers.get_str("target"), Some("shop::orders"));
        assert_eq!(
            headers.get("line").map(ToString::to_string).as_deref(),
            Some("7")
        );
        assert!(headers.get("dropped").is_none());
        let names: Vec<&str> = headers.iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "file",
                "level_name",
                "line",
                "module",
                "rust_level",
                "service_id",
                "service_type",
                "span_id",
                "target",
                "trace_id",
                "traceparent"
            ]
        );
        let body: serde_json::Value = serde_json::from_slice(record.body()).unwrap();
        assert_eq!(
            body,
            serde_json::Value::String(format!("{level} \"record\" ü"))
        );
    }
    assert_eq!(logger.shipped(), 5);
    assert_eq!(logger.dropped(), 0);

    // Declared as amqp-fabric declares it, or a Python service's declaration would fail.
    let exchanges =
        support::rabbitmqctl(&["list_exchanges", "name", "type", "durable", "auto_delete"]);
    let line = format!("{domain}.log.records\theaders\ttrue\tfalse");
    assert!(
        exchanges.lines().any(|l| l == line),
        "{line:?} not in\n{exchanges}"
    );
}

#[test]
fn a_level_filter_delivers_only_the_levels_wanted() {
    let domain = support::unique_domain("log-level-filter");
    let fabric = support::connect(&domain, "shop", "s1");
    let (_warnings, warnings) = tail(&fabric, &LogFilter::new().min_level(LogLevel::Warning));
    let (_all, all) = tail(&fabric, &LogFilter::new());
    let logger = logger(&fabric, LevelFilter::Trace);

    // One channel publishes them all, in this order; the broker keeps it per queue.
    emit(&logger, Level::Info, "shop", "info: filtered");
    emit(&logger, Level::Warn, "shop", "warn: wanted");
    emit(&logger, Level::Trace, "shop", "trace: filtered");
    emit(&logger, Level::Debug, "shop", "debug: filtered");
    emit(&logger, Level::Error, "shop", "marker");

    let first = next(&warnings);
    assert_eq!(
        (first.level(), first.message()),
        (Some(LogLevel::Warning), "warn: wanted")
    );
    let second = next(&warnings);
    assert_eq!(
        (second.level(), second.message()),
        (Some(LogLevel::Error), "marker")
    );
    assert!(warnings.try_recv().is_err(), "nothing more may arrive");

    let everything: Vec<String> = (0..5).map(|_| next(&all).message().to_owned()).collect();
    assert_eq!(
        everything,
        [
            "info: filtered",
            "warn: wanted",
            "trace: filtered",
            "debug: filtered",
            "marker"
        ]
    );
}

#[test]
fn a_service_filter_delivers_only_that_service() {
    let domain = support::unique_domain("log-service-filter");
    let shop = support::connect(&domain, "shop", "s1");
    let billing = support::connect(&domain, "billing", "b1");
    let (_shop_only, shop_only) = tail(&shop, &LogFilter::new().service_type("shop"));
    let (_b1_errors, b1_errors) = tail(
        &shop,
        &LogFilter::new().service_id("b1").min_level(LogLevel::Error),
    );
    // Sees everything: once it has a record, the broker has routed it to every queue.
    let (_all, all) = tail(&shop, &LogFilter::new());
    let shop_logger = logger(&shop, LevelFilter::Info);
    let billing_logger = logger(&billing, LevelFilter::Info);

    emit(&billing_logger, Level::Error, "billing", "billing error");
    assert_eq!(next(&all).message(), "billing error");
    emit(&shop_logger, Level::Error, "shop", "shop error");
    assert_eq!(next(&all).message(), "shop error");
    emit(&billing_logger, Level::Warn, "billing", "billing warning");
    assert_eq!(next(&all).message(), "billing warning");
    emit(&billing_logger, Level::Error, "billing", "billing marker");
    assert_eq!(next(&all).message(), "billing marker");
    emit(&shop_logger, Level::Info, "shop", "shop marker");
    assert_eq!(next(&all).message(), "shop marker");

    let first = next(&shop_only);
    assert_eq!(
        (first.service_type(), first.message()),
        (Some("shop"), "shop error")
    );
    let second = next(&shop_only);
    assert_eq!(
        (second.service_type(), second.message()),
        (Some("shop"), "shop marker")
    );
    assert!(shop_only.try_recv().is_err(), "nothing more may arrive");

    let first = next(&b1_errors);
    assert_eq!(
        (first.service_id(), first.message()),
        (Some("b1"), "billing error")
    );
    let second = next(&b1_errors);
    assert_eq!(
        (second.service_id(), second.message()),
        (Some("b1"), "billing marker")
    );
    assert!(b1_errors.try_recv().is_err(), "nothing more may arrive");
}

#[test]
fn records_from_python_handler_decode() {
    let python = support::python::interpreter();
    let domain = support::unique_domain("log-python");
    let fabric = support::connect(&domain, "log_tail", "t1");
    let (_tail, records) = tail(&fabric, &LogFilter::new().service_type("py_logger"));

    let script = format!("{}/tests/python/log_records.py", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&script)
        .args([&support::broker_url(), &domain, "py_logger", "p1"])
        .output()
        .expect("run python");
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("done"),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The handler publishes from tasks of their own, so the order is not promised.
    let by_level: HashMap<String, LogRecord> = (0..6)
        .map(|_| next(&records))
        .map(|record| (record.level_name().to_owned(), record))
        .collect();
    let expected = [
        ("DEBUG", Some(LogLevel::Debug), "py debug 1"),
        ("INFO", Some(LogLevel::Info), "py info two"),
        ("WARNING", Some(LogLevel::Warning), "py warning é"),
        ("ERROR", Some(LogLevel::Error), "py error"),
        ("CRITICAL", Some(LogLevel::Critical), "py critical"),
        ("NOTICE", None, "py notice"),
    ];
    for (name, level, message) in expected {
        let record = by_level
            .get(name)
            .unwrap_or_else(|| panic!("no {name} record among {:?}", by_level.keys()));
        assert_eq!(record.level(), level);
        assert_eq!(record.message(), message);
        assert_eq!(record.service_type(), Some("py_logger"));
        assert_eq!(record.service_id(), Some("p1"));
        assert_eq!(record.target(), None);
        assert_eq!(record.line(), None);
        assert_eq!(record.rust_level(), None);
        assert_eq!(record.dropped(), 0);
    }
}

#[test]
fn a_full_queue_drops_the_oldest_and_the_next_record_says_how_many() {
    const LOGGED: u64 = 20_000;
    let domain = support::unique_domain("log-overflow");
    let fabric = support::connect(&domain, "shop", "s1");
    let (_tail, records) = tail(&fabric, &LogFilter::new());
    let logger = RemoteLogger::builder(&fabric)
        .capacity(4)
        .build()
        .expect("start a remote logger");

    // Far faster than one publish per record: the queue of 4 overflows.
    for i in 0..LOGGED {
        emit(&logger, Level::Info, "shop", &i.to_string());
    }
    assert!(logger.flush_within(ARRIVAL), "the queue did not drain");
    let shipped = logger.shipped();
    assert_eq!(shipped + logger.dropped(), LOGGED);
    assert!(
        logger.dropped() > 0,
        "no record was dropped; the test proves nothing"
    );

    let mut previous: Option<u64> = None;
    let mut told = 0;
    let mut reports = 0;
    for _ in 0..shipped {
        let record = next(&records);
        let index: u64 = record.message().parse().expect("the message is the index");
        // Only the oldest are dropped: the gap before a record is exactly what it reports.
        let expected_gap = previous.map_or(index, |p| index - p - 1);
        assert_eq!(record.dropped(), expected_gap, "record {index}");
        if record.dropped() > 0 {
            reports += 1;
            let note = format!(" [{} earlier log records dropped]", record.dropped());
            let body: String = serde_json::from_slice(record.body()).unwrap();
            assert_eq!(body, format!("{index}{note}"));
            assert_eq!(
                record.headers().get("dropped").map(ToString::to_string),
                Some(record.dropped().to_string())
            );
        }
        told += record.dropped();
        previous = Some(index);
    }
    assert!(reports > 0);
    // The newest record always gets through, and every drop was told.
    assert_eq!(previous, Some(LOGGED - 1));
    assert_eq!(told, logger.dropped());
    assert_eq!(shipped + told, LOGGED);
    assert!(records.try_recv().is_err());
}

/// Keeps what a wrapped logger is handed.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Log for Captured {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Debug
    }

    fn log(&self, record: &Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }

    fn flush(&self) {}
}

#[test]
fn fabric_records_stay_local_and_a_wrapped_logger_sees_everything() {
    let domain = support::unique_domain("log-local");
    let fabric = support::connect(&domain, "shop", "s1");
    let (_tail, records) = tail(&fabric, &LogFilter::new());
    let captured = Captured::default();
    let logger = RemoteLogger::builder(&fabric)
        .level(LevelFilter::Trace)
        .exclude_target("noisy")
        .also_to(Box::new(captured.clone()))
        .build()
        .expect("start a remote logger");
    assert_eq!(logger.max_level(), LevelFilter::Trace);

    emit(&logger, Level::Info, "fabric_core::broker", "internal");
    emit(&logger, Level::Info, "amiquip::io_loop", "client");
    emit(&logger, Level::Info, "noisy::module", "excluded");
    emit(
        &logger,
        Level::Trace,
        "shop",
        "too detailed for the wrapped logger",
    );
    emit(&logger, Level::Info, "shop", "marker");

    let first = next(&records);
    assert_eq!(first.rust_level(), Some(Level::Trace));
    assert_eq!(next(&records).message(), "marker");
    assert!(records.try_recv().is_err());
    assert_eq!(
        *captured.0.lock().unwrap(),
        [
            "fabric_core::broker internal",
            "amiquip::io_loop client",
            "noisy::module excluded",
            "shop marker"
        ]
    );
}

#[test]
fn install_makes_it_the_global_logger() {
    // The only test here that installs a global logger: there is one per process.
    let domain = support::unique_domain("log-global");
    let fabric = support::connect(&domain, "shop", "s1");
    let (_tail, records) = tail(&fabric, &LogFilter::new());
    let logger = RemoteLogger::builder(&fabric)
        .level(LevelFilter::Info)
        .stderr(LevelFilter::Warn)
        .install()
        .expect("install the remote logger");
    assert_eq!(log::max_level(), LevelFilter::Info);
    assert!(
        logger.try_install().is_err(),
        "a second global logger must be refused"
    );

    log::debug!(target: "shop", "below the level");
    log::info!(target: "fabric_core::rpc", "fabric's own");
    log::warn!(target: "shop", "shipped and on stderr");
    log::logger().flush();

    let record = next(&records);
    assert_eq!(record.message(), "shipped and on stderr");
    assert_eq!(record.level(), Some(LogLevel::Warning));
    assert!(records.try_recv().is_err());
}
