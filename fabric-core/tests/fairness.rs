//! What a server's way of taking calls must keep, whatever it does for throughput:
//!
//! - a slow call never holds up quick calls while the instance has a worker free;
//! - an instance holds no more calls than it has workers (at the default prefetch): the rest
//!   wait in the broker, where another instance of the clique can take them;
//! - two instances of a clique share the calls;
//! - an instance that dies gives back the calls it held, and they are redelivered.
//!
//! Handlers wait on gates the test opens, so every "while busy" here is a state the test
//! has seen, not a sleep.

mod support;

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use fabric_core::{fabric_service, CallContext, Fabric, PendingCall, Server};
use support::{connect, connection_of, rabbitmqctl, unique_domain};

#[fabric_service]
pub trait Desk {
    /// Tells the test it started, then waits for the gate; returns its id.
    fn slow(&self, id: u64) -> u64;
    /// Returns its id at once.
    fn quick(&self, id: u64) -> u64;
}

/// A slow call as the test sees it start: which instance, which call, redelivered or not.
type Started = (&'static str, u64, bool);

struct Clerk {
    name: &'static str,
    started: Sender<Started>,
    gate: Receiver<()>,
}

impl Desk for Clerk {
    fn slow(&self, id: u64) -> u64 {
        let redelivered = CallContext::current().is_some_and(|c| c.redelivered());
        self.started.send((self.name, id, redelivered)).unwrap();
        // Bounded: a test that fails must not leave a worker blocked for ever.
        let _ = self.gate.recv_timeout(Duration::from_secs(30));
        id
    }

    fn quick(&self, id: u64) -> u64 {
        id
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// Waits for `n` slow calls to start.
fn started(rx: &Receiver<Started>, n: usize) -> Vec<Started> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("only {i} of {n} slow calls started"))
        })
        .collect()
}

/// (unacknowledged, ready) messages of `queue`, as the broker counts them.
fn queue_counts(queue: &str) -> (usize, usize) {
    let listing = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_unacknowledged",
        "messages_ready",
    ]);
    let line = listing
        .lines()
        .find(|line| line.split('\t').next() == Some(queue))
        .unwrap_or_else(|| panic!("no queue {queue} in:\n{listing}"));
    let counts: Vec<usize> = line
        .split('\t')
        .skip(1)
        .map(|n| n.trim().parse().unwrap())
        .collect();
    (counts[0], counts[1])
}

/// Waits until the broker counts `expected` for `queue` (its statistics lag by up to a
/// second or so); panics with the last counts otherwise.
fn await_counts(queue: &str, expected: (usize, usize)) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let counts = queue_counts(queue);
        if counts == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{queue}: (unacknowledged, ready) = {counts:?}, expected {expected:?}"
        );
        // rabbitmqctl is the event here: each call takes a few hundred ms.
    }
}

fn slow_call(client: &DeskClient, id: u64) -> PendingCall<u64> {
    client
        .rpc()
        .start_call("slow", &DeskSlowArgs { id })
        .unwrap()
}

/// One test's service: its domain, the gate its slow calls wait on, and where they say that
/// they started.
struct Office {
    domain: String,
    started_tx: Sender<Started>,
    started: Receiver<Started>,
    gate: Sender<()>,
    gate_rx: Receiver<()>,
}

impl Office {
    fn new(test: &str) -> Office {
        let (started_tx, started) = unbounded();
        let (gate, gate_rx) = unbounded();
        Office {
            domain: unique_domain(test),
            started_tx,
            started,
            gate,
            gate_rx,
        }
    }

    /// The fabric of instance `name` of the service `desk.d1`, serving with `workers`.
    fn serve(&self, name: &'static str, workers: usize) -> (Fabric, Server) {
        let fabric = connect(&self.domain, "desk", "d1");
        let server = self.serve_on(&fabric, name, workers);
        (fabric, server)
    }

    fn serve_on(&self, fabric: &Fabric, name: &'static str, workers: usize) -> Server {
        let clerk = Clerk {
            name,
            started: self.started_tx.clone(),
            gate: self.gate_rx.clone(),
        };
        DeskServer::new(clerk)
            .workers(workers)
            .serve(fabric)
            .unwrap()
    }

    /// A client of the service, on a fabric of its own.
    fn client(&self, timeout: Duration) -> (Fabric, DeskClient) {
        let fabric = connect(&self.domain, "caller", "c1");
        let client = DeskClient::connect(&fabric, &self.domain, "desk", "d1")
            .unwrap()
            .with_timeout(timeout);
        (fabric, client)
    }

    /// The method queue of `slow`.
    fn slow_queue(&self) -> String {
        format!("{}.api.desk.d1::slow", self.domain)
    }

    /// Lets `n` slow calls finish.
    fn release(&self, n: usize) {
        for _ in 0..n {
            self.gate.send(()).unwrap();
        }
    }
}

#[test]
fn quick_calls_pass_a_slow_one_while_a_worker_is_free() {
    let office = Office::new("fair-quick");
    let (_server_fabric, server) = office.serve("a", 2);
    let (_client_fabric, client) = office.client(WAIT);

    let slow = slow_call(&client, 1);
    started(&office.started, 1);
    // One worker is busy with the slow call; every quick call goes to the other.
    for id in 0..50 {
        assert_eq!(client.quick(id), Ok(id));
    }
    assert!(
        office.started.try_recv().is_err(),
        "the slow call ran more than once"
    );
    office.release(1);
    assert_eq!(slow.wait(), Ok(1));
    server.close().unwrap();
}

#[test]
fn an_instance_holds_no_more_calls_than_workers_and_a_clique_shares_them() {
    const WORKERS: usize = 2;
    let office = Office::new("fair-share");
    let (_fabric_a, server_a) = office.serve("a", WORKERS);
    let (_client_fabric, client) = office.client(Duration::from_secs(30));
    let queue = office.slow_queue();

    // Alone, a takes two calls and leaves the other three in the broker.
    let calls: Vec<_> = (0..5).map(|id| slow_call(&client, id)).collect();
    let first = started(&office.started, WORKERS);
    assert!(first.iter().all(|(name, _, _)| *name == "a"));
    await_counts(&queue, (WORKERS, 3));

    // b joins the clique: it takes two of the waiting calls, a takes none more.
    let (_fabric_b, server_b) = office.serve("b", WORKERS);
    let second = started(&office.started, WORKERS);
    assert!(
        second.iter().all(|(name, _, _)| *name == "b"),
        "the waiting calls went to {second:?}"
    );
    await_counts(&queue, (2 * WORKERS, 1));

    office.release(5);
    started(&office.started, 1);
    for (id, call) in calls.into_iter().enumerate() {
        assert_eq!(call.wait(), Ok(id as u64));
    }
    server_b.close().unwrap();
    server_a.close().unwrap();
}

#[test]
fn the_calls_a_lost_instance_held_are_redelivered_to_the_clique() {
    const WORKERS: usize = 3;
    let office = Office::new("fair-lost");
    // a alone first, so the broker names only its connection after the service.
    let fabric_a = connect(&office.domain, "desk", "d1");
    let connection_a = connection_of(&fabric_a.address().fqn());
    let server_a = office.serve_on(&fabric_a, "a", WORKERS);
    let (_client_fabric, client) = office.client(Duration::from_secs(30));
    let calls: Vec<_> = (0..5).map(|id| slow_call(&client, id)).collect();
    let held_by_a = started(&office.started, WORKERS);
    await_counts(&office.slow_queue(), (WORKERS, 2));

    // b joins with room for every call; then a loses its connection while it holds three.
    let (_fabric_b, server_b) = office.serve("b", 8);
    let waiting = started(&office.started, 2);
    assert!(waiting
        .iter()
        .all(|(name, _, redelivered)| *name == "b" && !redelivered));
    rabbitmqctl(&["close_connection", &connection_a, "fault injection"]);

    // a's three calls come to b, marked as redelivered.
    let mut redelivered: Vec<u64> = started(&office.started, WORKERS)
        .into_iter()
        .map(|(name, id, again)| {
            assert_eq!((name, again), ("b", true), "call {id}");
            id
        })
        .collect();
    redelivered.sort_unstable();
    let mut held: Vec<u64> = held_by_a.iter().map(|(_, id, _)| *id).collect();
    held.sort_unstable();
    assert_eq!(redelivered, held);
    // a's handlers are released too; their replies cannot go out on the dead channel.
    office.release(5 + WORKERS);
    for (id, call) in calls.into_iter().enumerate() {
        assert_eq!(call.wait(), Ok(id as u64), "call {id}");
    }
    server_b.close().unwrap();
    drop(server_a);
}
