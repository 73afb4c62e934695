//! `#[fabric(idempotent)]` through a generated client: such a method is tried again under the
//! client's retry policy, every other method is sent once.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use fabric_core::{fabric_service, Error, RetryPolicy};

#[fabric_service]
pub trait Store {
    /// Reads: harmless to run twice.
    #[fabric(idempotent)]
    fn get(&self, key: String) -> String;
    /// Writes: sent once.
    fn put(&self, key: String);
    /// Reads, with an error of its own: retried too, but its error is an answer.
    #[fabric(idempotent)]
    fn find(&self, key: String) -> Result<String, Missing>;
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Missing(String);

struct Memory(Arc<AtomicUsize>);

impl Store for Memory {
    fn get(&self, key: String) -> String {
        self.0.fetch_add(1, Ordering::SeqCst);
        format!("value of {key}")
    }
    fn put(&self, _key: String) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn find(&self, key: String) -> Result<String, Missing> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Missing(key))
    }
}

/// Forwards fabric's "trying again" log lines to the test, the event a retry makes.
struct RetryLog(Mutex<Option<mpsc::Sender<String>>>);

impl log::Log for RetryLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = record.args().to_string();
        if line.contains("trying again") {
            if let Some(retries) = &*self.0.lock().unwrap() {
                let _ = retries.send(line);
            }
        }
    }
    fn flush(&self) {}
}

fn retry_log() -> mpsc::Receiver<String> {
    static LOGGER: OnceLock<&'static RetryLog> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| {
        let logger: &'static RetryLog = Box::leak(Box::new(RetryLog(Mutex::new(None))));
        log::set_logger(logger).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        logger
    });
    let (tx, rx) = mpsc::channel();
    *logger.0.lock().unwrap() = Some(tx);
    rx
}

#[test]
fn an_idempotent_method_is_retried_until_its_service_comes_up() {
    let retries = retry_log();
    let domain = support::unique_domain("retry");
    let fabric = support::connect(&domain, "reader", "r1");
    let client = StoreClient::connect(&fabric, &domain, "store", "s1")
        .unwrap()
        .with_retry(RetryPolicy::new(8, Duration::from_millis(100)));

    // Not idempotent: one attempt, and the caller hears of it.
    assert!(matches!(client.put("k"), Err(Error::NoSuchService { .. })));
    assert!(retries.try_recv().is_err(), "put was retried");

    // Idempotent: the first attempt finds no service, and the client tries again ...
    let reading = {
        let client = client.clone();
        std::thread::spawn(move || client.get("k"))
    };
    let finding = {
        let client = client.clone();
        std::thread::spawn(move || client.find("k"))
    };
    let mut retried = Vec::new();
    while !["::get failed", "::find failed"]
        .iter()
        .all(|method| retried.iter().any(|line: &String| line.contains(method)))
    {
        retried.push(retries.recv_timeout(Duration::from_secs(10)).unwrap());
    }

    // ... until the service is there.
    let runs = Arc::new(AtomicUsize::new(0));
    let server_fabric = support::connect(&domain, "store", "s1");
    let server = StoreServer::new(Memory(Arc::clone(&runs)))
        .serve(&server_fabric)
        .unwrap();
    assert_eq!(reading.join().unwrap().unwrap(), "value of k");
    // The service's own error is an answer: returned, not retried.
    assert_eq!(finding.join().unwrap().unwrap(), Err(Missing("k".into())));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "returned attempts never ran, and an error is not retried"
    );

    // A policy of one attempt turns retries off.
    let once = client.with_retry(RetryPolicy::never());
    server.close().unwrap();
    assert!(matches!(once.get("k"), Err(Error::NoSuchService { .. })));
    assert!(
        retries.try_recv().is_err(),
        "retried under RetryPolicy::never"
    );
}
