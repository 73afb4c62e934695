//! RPC through broken connections: a broker restarted under load, a failover to the
//! fallback broker, a silent link, and idempotent retries across a break.
//!
//! Brokers are broken only when they are this file's own private nodes (shared by the
//! tests that need them, one test at a time); the silent-link and retry tests break only
//! their own connections, through a proxy in front of the main broker. Each test prints its
//! measured figures (`cargo test --test faults_rpc -- --nocapture` shows them).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use fabric_core::{
    fabric_service, ConnectionState, Error, Fabric, FabricConfig, RetryPolicy, Server,
};
use serde::Serialize;
use support::private_broker::PrivateBroker;
use support::proxy::Proxy;

/// The timeout of every call under load: it bounds how long any call can take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a held call waits for the test to let it go, at most.
const HOLD_LIMIT: Duration = Duration::from_secs(20);

#[fabric_service]
pub trait Ledger {
    /// Records the call id and returns it.
    fn record(&self, call_id: u64) -> u64;
    /// As `record`, but the first run for an id waits until the test opens the gate.
    fn hold(&self, call_id: u64) -> u64;
}

/// What the servers ran, shared by every server a test starts.
#[derive(Default)]
struct Books {
    /// How many times each call id ran.
    runs: Mutex<HashMap<u64, u32>>,
    /// Told the id of each call that `hold` holds.
    held: Mutex<Option<mpsc::Sender<u64>>>,
    /// Opened at the end of a test to let held calls go.
    gate: (Mutex<bool>, Condvar),
}

impl Books {
    fn note(&self, call_id: u64) -> u32 {
        let mut runs = self.runs.lock().unwrap();
        let count = runs.entry(call_id).or_insert(0);
        *count += 1;
        *count
    }

    fn runs_of(&self, call_id: u64) -> u32 {
        self.runs
            .lock()
            .unwrap()
            .get(&call_id)
            .copied()
            .unwrap_or(0)
    }

    /// Ids that ran more than once.
    fn duplicated(&self) -> usize {
        self.runs
            .lock()
            .unwrap()
            .values()
            .filter(|&&n| n > 1)
            .count()
    }

    fn open_gate(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

struct Clerk {
    books: Arc<Books>,
}

impl Ledger for Clerk {
    fn record(&self, call_id: u64) -> u64 {
        self.books.note(call_id);
        call_id
    }

    fn hold(&self, call_id: u64) -> u64 {
        if self.books.note(call_id) == 1 {
            if let Some(held) = &*self.books.held.lock().unwrap() {
                let _ = held.send(call_id);
            }
            let (open, opened) = &self.books.gate;
            let _ = opened.wait_timeout_while(open.lock().unwrap(), HOLD_LIMIT, |open| !*open);
        }
        call_id
    }
}

/// The arguments of both methods, for calls through the untyped client.
#[derive(Serialize)]
struct CallId {
    call_id: u64,
}

fn serve(fabric: &Fabric, books: &Arc<Books>, workers: usize) -> Server {
    LedgerServer::new(Clerk {
        books: Arc::clone(books),
    })
    .workers(workers)
    .prefetch(1)
    .serve(fabric)
    .unwrap()
}

/// Waits until `server` consumes again after its fabric reconnected (its workers resume by
/// themselves; a new server would not do: dropping the old one would cancel its consumers
/// and so delete its auto-delete queues with the calls in them).
fn await_serving(server: &Server) -> Instant {
    assert!(
        server.wait_serving(Duration::from_secs(60)),
        "the server did not resume serving"
    );
    Instant::now()
}

/// Every state change of a fabric, with when it happened.
fn watch(fabric: &Fabric) -> mpsc::Receiver<(Instant, ConnectionState)> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    fabric.on_connection_change(move |state| {
        let _ = tx.lock().unwrap().send((Instant::now(), state.clone()));
    });
    rx
}

/// Waits for the first state that `wanted` accepts; when it came.
fn await_state(
    states: &mpsc::Receiver<(Instant, ConnectionState)>,
    within: Duration,
    what: &str,
    wanted: impl Fn(&ConnectionState) -> bool,
) -> (Instant, ConnectionState) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match states.recv_timeout(left) {
            Ok((at, state)) if wanted(&state) => return (at, state),
            Ok(_) => {}
            Err(e) => panic!("no {what} within {within:?}: {e}"),
        }
    }
}

fn reconnecting(state: &ConnectionState) -> bool {
    matches!(state, ConnectionState::Reconnecting { .. })
}

fn reconnected(state: &ConnectionState) -> bool {
    matches!(state, ConnectionState::Connected { generation, .. } if *generation >= 2)
}

/// The private nodes of this file: A, and B for the failover, started on first use. Tests
/// hold the lock for their whole run, so one breaks a node at a time; the last test to let
/// go of the `Arc` stops them and removes their files.
struct Nodes {
    a: PrivateBroker,
    b: Option<PrivateBroker>,
}

fn nodes() -> Arc<Mutex<Nodes>> {
    static SHARED: Mutex<Weak<Mutex<Nodes>>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(nodes) = shared.upgrade() {
        return nodes;
    }
    let nodes = Arc::new(Mutex::new(Nodes {
        a: PrivateBroker::start(),
        b: None,
    }));
    *shared = Arc::downgrade(&nodes);
    nodes
}

fn lock(nodes: &Mutex<Nodes>) -> MutexGuard<'_, Nodes> {
    // A test that failed holding the lock leaves the nodes usable.
    nodes.lock().unwrap_or_else(|e| e.into_inner())
}

/// Outcomes of calls under load.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    interrupted: Vec<u64>,
    unavailable: usize,
    no_such_service: usize,
    timed_out: usize,
    other: Vec<String>,
    slowest: Duration,
}

#[test]
fn a_broker_restart_under_rpc_load_interrupts_calls_and_they_resume() {
    let nodes = nodes();
    let mut nodes = lock(&nodes);
    nodes.a.start_again();
    let domain = support::unique_domain("restart");
    let books = Arc::new(Books::default());
    let server_fabric = nodes.a.connect(&domain, "ledger", "l1");
    let server_states = watch(&server_fabric);
    let server = serve(&server_fabric, &books, 3);
    let fabric = nodes.a.connect(&domain, "teller", "t1");
    let states = watch(&fabric);
    let client = LedgerClient::connect(&fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(CALL_TIMEOUT);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next_id = Arc::new(AtomicU64::new(1));
    let (progress_tx, progress) = mpsc::channel::<Instant>();
    let (unavailable_tx, unavailable) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<()>();
    const CALLERS: usize = 4;
    for _ in 0..CALLERS {
        let (client, stop, tally, next_id) = (
            client.clone(),
            Arc::clone(&stop),
            Arc::clone(&tally),
            Arc::clone(&next_id),
        );
        let (progress_tx, unavailable_tx, done_tx) =
            (progress_tx.clone(), unavailable_tx.clone(), done_tx.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                let started = Instant::now();
                let outcome = client.record(id);
                let took = started.elapsed();
                let mut tally = tally.lock().unwrap();
                tally.slowest = tally.slowest.max(took);
                match outcome {
                    Ok(answer) if answer == id => {
                        tally.ok += 1;
                        let _ = progress_tx.send(Instant::now());
                    }
                    Ok(answer) => tally.other.push(format!("{id} answered as {answer}")),
                    Err(Error::CallInterrupted { .. }) => tally.interrupted.push(id),
                    Err(Error::Unavailable { .. }) => {
                        tally.unavailable += 1;
                        let _ = unavailable_tx.send(());
                    }
                    Err(Error::NoSuchService { .. }) => tally.no_such_service += 1,
                    Err(Error::Timeout { .. }) => tally.timed_out += 1,
                    Err(e) => tally.other.push(e.to_string()),
                }
            }
            let _ = done_tx.send(());
        });
    }
    let await_successes = |count: usize, after: Instant, within: Duration| -> Instant {
        let deadline = Instant::now() + within;
        let mut seen = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let at = progress
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("only {seen} of {count} calls succeeded: {e}"));
            if at > after {
                seen += 1;
                if seen == count {
                    return at;
                }
            }
        }
    };
    await_successes(100, Instant::now(), Duration::from_secs(30));

    let killed_at = Instant::now();
    nodes.a.kill();
    let (lost_at, _) = await_state(&states, Duration::from_secs(30), "loss", reconnecting);
    // The broker stays down until a call made meanwhile has waited its whole timeout for it.
    unavailable
        .recv_timeout(CALL_TIMEOUT + Duration::from_secs(10))
        .expect("no call made while the broker was down failed as unavailable");
    nodes.a.start_again();
    let restarted_at = Instant::now();
    await_state(
        &server_states,
        Duration::from_secs(60),
        "server reconnection",
        reconnected,
    );
    let server_back_at = await_serving(&server);
    let (client_back_at, _) = await_state(
        &states,
        Duration::from_secs(60),
        "client reconnection",
        reconnected,
    );
    let first_ok = await_successes(1, restarted_at, Duration::from_secs(60));
    await_successes(100, first_ok, Duration::from_secs(30));

    stop.store(true, Ordering::SeqCst);
    for _ in 0..CALLERS {
        // A caller finishes its current call within the call timeout, whatever happens.
        done.recv_timeout(CALL_TIMEOUT + Duration::from_secs(5))
            .expect("a caller hung");
    }
    drop(server);
    let tally = tally.lock().unwrap();
    let interrupted_that_ran = tally
        .interrupted
        .iter()
        .filter(|&&id| books.runs_of(id) > 0)
        .count();
    eprintln!(
        "restart under load ({CALLERS} callers, 3 workers): killed -> client saw the loss in \
         {:?}; broker back after {:?} down; from the restart: server serving in {:?}, \
         client in {:?}, first successful call in {:?}",
        lost_at - killed_at,
        restarted_at - killed_at,
        server_back_at - restarted_at,
        client_back_at - restarted_at,
        first_ok - restarted_at,
    );
    eprintln!(
        "restart under load: ok {}, interrupted {} ({interrupted_that_ran} of them had run), \
         unavailable {}, no such service {}, timed out {}, other {:?}, hung 0, run twice {}, \
         slowest call {:?}",
        tally.ok,
        tally.interrupted.len(),
        tally.unavailable,
        tally.no_such_service,
        tally.timed_out,
        tally.other,
        books.duplicated(),
        tally.slowest,
    );
    assert!(
        tally.other.is_empty(),
        "unexpected outcomes: {:?}",
        tally.other
    );
    assert_eq!(
        tally.timed_out, 0,
        "a call timed out instead of being interrupted"
    );
    assert_eq!(books.duplicated(), 0, "a call ran twice");
    // Four callers always have calls in flight: the kill interrupts some of them.
    assert!(!tally.interrupted.is_empty(), "no call was interrupted");
    // Waiting calls fail once their timeout has passed, not much later.
    assert!(
        tally.slowest < CALL_TIMEOUT + Duration::from_secs(2),
        "{:?}",
        tally.slowest
    );
}

#[test]
fn client_and_server_fail_over_to_the_fallback_broker() {
    let nodes = nodes();
    let mut nodes = lock(&nodes);
    nodes.a.start_again();
    if nodes.b.is_none() {
        nodes.b = Some(PrivateBroker::start());
    }
    let (a_url, b_url) = (nodes.a.url(), nodes.b.as_ref().unwrap().url());
    let b_port = format!(":{}", nodes.b.as_ref().unwrap().port());
    let domain = support::unique_domain("failover");
    let connect = |service_type: &str, service_id: &str| {
        Fabric::connect(
            FabricConfig::new(&a_url, &domain, service_type, service_id)
                .fallback_url(&b_url)
                .heartbeat(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(5))
                .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1)),
        )
        .unwrap()
    };
    let books = Arc::new(Books::default());
    let server_fabric = connect("ledger", "l1");
    let server_states = watch(&server_fabric);
    let server = serve(&server_fabric, &books, 2);
    let fabric = connect("teller", "t1");
    let states = watch(&fabric);
    let client = LedgerClient::connect(&fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(CALL_TIMEOUT);
    assert_eq!(client.record(1).unwrap(), 1);

    let stopping_at = Instant::now();
    nodes.a.stop();
    let stopped_at = Instant::now();
    let on_b = |state: &ConnectionState| matches!(state, ConnectionState::Connected { url, .. } if url.contains(&b_port));
    let (server_on_b_at, _) =
        await_state(&server_states, Duration::from_secs(60), "server on B", on_b);
    await_serving(&server);
    let (client_on_b_at, _) = await_state(&states, Duration::from_secs(60), "client on B", on_b);
    // Until the server has declared its queues on B, calls fail at once; each attempt is
    // an event (the call's outcome), and the loop is bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failures = Vec::new();
    let first_ok_at = loop {
        assert!(
            Instant::now() < deadline,
            "no call succeeded on B: {failures:?}"
        );
        match client.record(2) {
            Ok(2) => break Instant::now(),
            Ok(other) => panic!("call 2 answered as {other}"),
            Err(
                e @ (Error::NoSuchService { .. }
                | Error::Unavailable { .. }
                | Error::CallInterrupted { .. }),
            ) => failures.push(e.to_string()),
            Err(e) => panic!("unexpected failure on failover: {e}"),
        }
    };
    drop(server);
    eprintln!(
        "failover A -> B: stopping A took {:?}; from the stop command: server on B in {:?}, \
         client on B in {:?}, first successful call in {:?} (the test's calls start once \
         the stop has returned and the server serves on B: {:?} after that; {} failed \
         attempts before)",
        stopped_at - stopping_at,
        server_on_b_at - stopping_at,
        client_on_b_at - stopping_at,
        first_ok_at - stopping_at,
        first_ok_at - stopped_at,
        failures.len(),
    );
    assert!(
        matches!(fabric.connection_state(), ConnectionState::Connected { url, .. } if url.contains(&b_port))
    );
    assert_eq!(books.duplicated(), 0);
}

#[test]
fn missed_heartbeats_on_a_silent_link_are_noticed_and_the_link_comes_back() {
    const HEARTBEAT: Duration = Duration::from_secs(2);
    // The main broker, through a proxy that only this test's connection uses.
    let proxy = Proxy::start(5672);
    let domain = support::unique_domain("silent");
    let books = Arc::new(Books::default());
    let server_fabric = support::connect(&domain, "ledger", "l1");
    let _server = serve(&server_fabric, &books, 1);
    let fabric = Fabric::connect(
        FabricConfig::new(&proxy.url(), &domain, "teller", "t1")
            .heartbeat(HEARTBEAT)
            .connect_timeout(Duration::from_secs(5))
            .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500)),
    )
    .unwrap();
    let states = watch(&fabric);
    let client = LedgerClient::connect(&fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(CALL_TIMEOUT);
    assert_eq!(client.record(1).unwrap(), 1);
    let accepted_before = proxy.accepted();

    let frozen_at = Instant::now();
    proxy.freeze();
    let (lost_at, lost) = await_state(&states, HEARTBEAT * 4, "loss", reconnecting);
    let detection = lost_at - frozen_at;
    proxy.thaw();
    let thawed_at = Instant::now();
    let (back_at, _) = await_state(
        &states,
        Duration::from_secs(30),
        "reconnection",
        reconnected,
    );
    assert_eq!(client.record(2).unwrap(), 2);
    eprintln!(
        "silent link (heartbeat {HEARTBEAT:?}): loss noticed {detection:?} after the freeze \
         ({lost}); reconnected {:?} after the thaw; {} connections through the proxy",
        back_at - thawed_at,
        proxy.accepted(),
    );
    // amiquip gives up after two heartbeat intervals without a frame from the broker,
    // counted from the last frame, which came before the freeze; the allowance covers
    // its timer's tick and the wake-up of the thread that watches the connection.
    assert!(
        detection <= HEARTBEAT * 2 + Duration::from_millis(500),
        "missed heartbeats noticed after {detection:?}"
    );
    assert!(
        proxy.accepted() > accepted_before,
        "no new connection through the proxy"
    );
}

#[test]
fn an_idempotent_call_survives_a_break_by_retrying_and_a_plain_one_is_interrupted() {
    let proxy = Proxy::start(5672);
    let domain = support::unique_domain("retry");
    let books = Arc::new(Books::default());
    let (held_tx, held) = mpsc::channel();
    *books.held.lock().unwrap() = Some(held_tx);
    // The server connects directly: only the client's connection breaks. Two workers with
    // prefetch 1, so a retry is not queued behind the held first run.
    let server_fabric = support::connect(&domain, "ledger", "l1");
    let _server = serve(&server_fabric, &books, 2);
    let fabric = Fabric::connect(
        FabricConfig::new(&proxy.url(), &domain, "teller", "t1")
            .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500)),
    )
    .unwrap();
    let states = watch(&fabric);
    let client = LedgerClient::connect(&fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(Duration::from_secs(15))
        .rpc()
        .with_retry(RetryPolicy::new(3, Duration::from_millis(100)));

    // Idempotent: the first run is held while the connection breaks; the retry answers.
    let (done_tx, done) = mpsc::channel();
    let retrying = client.clone();
    let started_at = Instant::now();
    std::thread::spawn(move || {
        let _ = done_tx.send(retrying.call_idempotent::<_, u64>("hold", &CallId { call_id: 1 }));
    });
    assert_eq!(held.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    proxy.sever();
    let outcome = done
        .recv_timeout(Duration::from_secs(20))
        .expect("the idempotent call hung");
    let retried_in = started_at.elapsed();
    assert_eq!(outcome, Ok(1));
    assert_eq!(books.runs_of(1), 2, "the retry did not run on the server");
    await_state(
        &states,
        Duration::from_secs(10),
        "reconnection",
        reconnected,
    );

    // The same through `call`: interrupted, not retried.
    let (done_tx, done) = mpsc::channel();
    let plain = client.clone();
    std::thread::spawn(move || {
        let _ = done_tx.send(plain.call::<_, u64>("hold", &CallId { call_id: 2 }));
    });
    assert_eq!(held.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
    let severed_at = Instant::now();
    proxy.sever();
    let outcome = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the plain call hung");
    let interrupted_in = severed_at.elapsed();
    books.open_gate();
    assert!(
        matches!(&outcome, Err(Error::CallInterrupted { method, .. }) if method == "hold"),
        "{outcome:?}"
    );
    assert_eq!(books.runs_of(2), 1, "a plain call was retried");
    eprintln!(
        "idempotent retry: answered once after {retried_in:?} (the handler ran it {} times, \
         the first reply was lost with the connection); plain call interrupted {:?} after \
         the break, run once",
        books.runs_of(1),
        interrupted_in,
    );
}

#[test]
fn while_reconnecting_a_call_waits_its_timeout_and_close_ends_the_wait() {
    // The client reaches the main broker through a proxy that is cut and then stays silent,
    // so the client keeps reconnecting (each attempt times out in the handshake).
    let proxy = Proxy::start(5672);
    let domain = support::unique_domain("waiting");
    let books = Arc::new(Books::default());
    let server_fabric = support::connect(&domain, "ledger", "l1");
    let _server = serve(&server_fabric, &books, 1);
    let fabric = Fabric::connect(
        FabricConfig::new(&proxy.url(), &domain, "teller", "t1")
            .connect_timeout(Duration::from_secs(2))
            .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500)),
    )
    .unwrap();
    let states = watch(&fabric);
    let client = LedgerClient::connect(&fabric, &domain, "ledger", "l1").unwrap();
    assert_eq!(client.record(1).unwrap(), 1);
    proxy.freeze();
    proxy.sever();
    await_state(&states, Duration::from_secs(10), "loss", reconnecting);

    // A call made now waits for the connection for its own timeout, then fails; it was
    // never sent, so it never ran.
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let outcome = client.with_timeout(timeout).record(2);
    let waited = started.elapsed();
    assert!(
        matches!(outcome, Err(Error::Unavailable { .. })),
        "{outcome:?}"
    );
    assert!(
        waited >= timeout && waited < timeout + Duration::from_millis(500),
        "{waited:?}"
    );

    // A call waiting with a long timeout fails with Closed as soon as the fabric closes.
    let (done_tx, done) = mpsc::channel();
    let waiting = client.with_timeout(Duration::from_secs(30));
    std::thread::spawn(move || {
        let outcome = waiting.record(3);
        let _ = done_tx.send((Instant::now(), outcome));
    });
    // No event says that the call has started waiting; give its thread a moment. Were it
    // to start after the close, it would fail with Closed all the same.
    std::thread::sleep(Duration::from_millis(200));
    let closing_at = Instant::now();
    fabric.close().unwrap();
    let (ended_at, outcome) = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiting call hung");
    assert_eq!(outcome, Err(Error::Closed));
    let ended_in = ended_at.saturating_duration_since(closing_at);
    assert!(ended_in < Duration::from_secs(1), "{ended_in:?}");
    assert_eq!(
        books.runs_of(2) + books.runs_of(3),
        0,
        "a call that waited was sent"
    );
    eprintln!(
        "while reconnecting: a call with a {timeout:?} timeout failed as unavailable after \
         {waited:?}; a waiting call failed with Closed {ended_in:?} after close began"
    );
}
