//! A slow server under more calls than it can run: what waits, waits in the broker.
//!
//! The server holds at most `workers × prefetch` calls; the rest stay ready in the method
//! queue and expire there with their callers' timeouts. Callers get timeouts, the server's
//! memory does not grow with the load, and the server answers promptly once the load stops.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, Error};

#[fabric_service]
pub trait Slow {
    fn work(&self, millis: u64) -> u64;
}

/// What the test reads while the server runs.
struct Stats {
    running: AtomicUsize,
    most_running: AtomicUsize,
    started: Mutex<Option<mpsc::Sender<()>>>,
}

struct Worker(Arc<Stats>);

impl Slow for Worker {
    fn work(&self, millis: u64) -> u64 {
        let stats = &*self.0;
        let now = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
        stats.most_running.fetch_max(now, Ordering::SeqCst);
        if let Some(started) = stats.started.lock().unwrap().take() {
            let _ = started.send(());
        }
        // The work itself: a slow handler is what this test is about.
        std::thread::sleep(Duration::from_millis(millis));
        stats.running.fetch_sub(1, Ordering::SeqCst);
        millis
    }
}

#[test]
fn a_slow_server_keeps_the_backlog_in_the_broker_and_callers_time_out() {
    const WORKERS: usize = 2;
    const CALLERS: usize = 32;
    let domain = support::unique_domain("backpressure");
    let server_fabric = support::connect(&domain, "slow", "s1");
    let (started_tx, started_rx) = mpsc::channel();
    let stats = Arc::new(Stats {
        running: AtomicUsize::new(0),
        most_running: AtomicUsize::new(0),
        started: Mutex::new(Some(started_tx)),
    });
    let server = SlowServer::new(Worker(Arc::clone(&stats)))
        .workers(WORKERS)
        .serve(&server_fabric)
        .unwrap();
    let fabric = support::connect(&domain, "caller", "c1");
    let client = SlowClient::connect(&fabric, &domain, "slow", "s1")
        .unwrap()
        .with_timeout(Duration::from_millis(300));

    // Each caller calls until told to stop (or 20 s pass): far more than two workers can do.
    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (client, done) = (client.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let (mut answered, mut timed_out) = (0, 0);
                let end = Instant::now() + Duration::from_secs(20);
                while !done.load(Ordering::SeqCst) && Instant::now() < end {
                    match client.work(20) {
                        Ok(20) => answered += 1,
                        Err(Error::Timeout { .. }) => timed_out += 1,
                        other => panic!("a call under load ended with {other:?}"),
                    }
                }
                (answered, timed_out)
            })
        })
        .collect();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // Sampled while the callers still call: the server holds no more than its prefetch.
    let queue = format!("{domain}.api.slow.s1::work");
    let queues = support::rabbitmqctl(&[
        "list_queues",
        "name",
        "messages_unacknowledged",
        "messages_ready",
    ]);
    done.store(true, Ordering::SeqCst);
    let (mut answered, mut timed_out) = (0, 0);
    for caller in callers {
        let (a, t) = caller.join().unwrap();
        answered += a;
        timed_out += t;
    }
    let line = queues
        .lines()
        .find(|line| line.split('\t').next() == Some(queue.as_str()))
        .unwrap_or_else(|| panic!("no queue {queue} in:\n{queues}"));
    let counts: Vec<usize> = line
        .split('\t')
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    eprintln!(
        "backpressure: {answered} answered, {timed_out} timed out; in the broker: \
         {} held by the server, {} waiting",
        counts[0], counts[1]
    );
    assert!(counts[0] <= WORKERS, "the server held {} calls", counts[0]);
    assert!(counts[1] > 0, "no call waited in the broker: {line}");
    assert!(stats.most_running.load(Ordering::SeqCst) <= WORKERS);
    assert!(
        answered > 0 && timed_out > 0,
        "{answered} answered, {timed_out} timed out"
    );

    // The backlog expires in the queue: a new call is answered, not stuck behind it.
    let patient = client.with_timeout(Duration::from_secs(10));
    assert_eq!(patient.work(0).unwrap(), 0);
    server.close().unwrap();
}
