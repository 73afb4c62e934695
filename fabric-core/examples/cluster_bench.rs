//! Calls per second on a three-node cluster against a single node, and durable RPC (quorum
//! method queues) against classic; events per second into a classic subscription and a
//! quorum one (published persistent). On private nodes of this machine
//! (`testing::TestBroker` and `TestCluster`): prints two tables.
//!
//! Usage: `cargo run --release -p fabric-core --example cluster_bench [-- SECONDS]` (each
//! figure is the median of 3 runs of SECONDS, default 4, interleaved). Needs RabbitMQ
//! installed, as the fault tests do. The nodes of the cluster share the machine's cores with
//! each other and with the bench: a figure here says what a cluster costs in work, not what
//! it gives on machines of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_core::testing::{TestBroker, TestCluster};
use fabric_core::{fabric_service, Fabric, FabricConfig};

/// Calling threads.
const CALLERS: usize = 16;
/// Workers of the server.
const WORKERS: usize = 8;
/// Runs of each setup.
const RUNS: usize = 3;

#[fabric_service]
pub trait Echo {
    /// Returns its argument.
    fn echo(&self, n: u64) -> u64;
}

struct Echoer;

impl Echo for Echoer {
    fn echo(&self, n: u64) -> u64 {
        n
    }
}

/// One way of running the service and its client.
struct Setup {
    name: &'static str,
    server: FabricConfig,
    client: FabricConfig,
    durable: bool,
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let run_for = Duration::from_secs(seconds);
    let single = TestBroker::start();
    let cluster = TestCluster::start();
    let setups = [
        (
            "single node",
            false,
            single.config("b", "echo", "e1"),
            single.config("b", "desk", "d1"),
        ),
        (
            "single node, durable",
            true,
            single.config("b", "echo", "e2"),
            single.config("b", "desk", "d1"),
        ),
        (
            "cluster, client and queues on one node",
            false,
            cluster.config(0, "b", "echo", "e1"),
            cluster.config(0, "b", "desk", "d1"),
        ),
        (
            "cluster, calls across nodes",
            false,
            cluster.config(0, "b", "echo", "e2"),
            cluster.config(1, "b", "desk", "d1"),
        ),
        (
            "cluster, calls across nodes, durable",
            true,
            cluster.config(0, "b", "echo", "e3"),
            cluster.config(1, "b", "desk", "d1"),
        ),
    ]
    .map(|(name, durable, server, client)| Setup {
        name,
        server,
        client,
        durable,
    });
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    for _ in 0..RUNS {
        for (setup, runs) in setups.iter().zip(&mut figures) {
            runs.push(calls_per_second(setup, run_for));
        }
    }
    let medians: Vec<f64> = figures
        .iter_mut()
        .map(|runs| {
            runs.sort_by(f64::total_cmp);
            runs[runs.len() / 2]
        })
        .collect();
    println!(
        "\n{CALLERS} calling threads, {WORKERS} workers, prefetch 1; median of {RUNS} runs of {seconds} s\n"
    );
    println!("| setup | calls/s | vs single node |");
    println!("| --- | ---: | ---: |");
    for (setup, median) in setups.iter().zip(&medians) {
        println!(
            "| {} | {median:.0} | {:.2}x |",
            setup.name,
            median / medians[0]
        );
    }
    println!(
        "\ndurable vs classic: single node {:.2}x, cluster {:.2}x",
        medians[1] / medians[0],
        medians[4] / medians[3]
    );

    let streams = [
        (
            "single node, classic subscription",
            false,
            single.config("b", "pub", "p1"),
            single.config("b", "sub", "s1"),
        ),
        (
            "single node, quorum subscription",
            true,
            single.config("b", "pub", "p1"),
            single.config("b", "sub", "s1"),
        ),
        (
            "cluster, classic subscription",
            false,
            cluster.config(1, "b", "pub", "p1"),
            cluster.config(0, "b", "sub", "s1"),
        ),
        (
            "cluster, quorum subscription",
            true,
            cluster.config(1, "b", "pub", "p1"),
            cluster.config(0, "b", "sub", "s1"),
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); streams.len()];
    for run in 0..RUNS {
        for (index, ((name, quorum, publisher, subscriber), runs)) in
            streams.iter().zip(&mut rates).enumerate()
        {
            let queue = format!("bench-{}-{index}-{run}", std::process::id());
            let rate = events_per_second(publisher, subscriber, *quorum, &queue);
            eprintln!("{name}: {rate:.0} events/s");
            runs.push(rate);
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|runs| {
            runs.sort_by(f64::total_cmp);
            runs[runs.len() / 2]
        })
        .collect();
    println!("\n{EVENTS} events published with confirms (window 256) until all received; median of {RUNS} runs\n");
    println!("| setup | events/s | vs single node, classic |");
    println!("| --- | ---: | ---: |");
    for ((name, ..), median) in streams.iter().zip(&medians) {
        println!("| {name} | {median:.0} | {:.2}x |", median / medians[0]);
    }
    // The quorum queues are durable: remove them.
    for node in std::iter::once(&single).chain(cluster.nodes().iter().take(1)) {
        let listing = node.rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
        for name in listing.lines().filter(|name| name.starts_with("bench-")) {
            node.rabbitmqctl(&["delete_queue", name]);
        }
    }
}

/// Events per run of [`events_per_second`].
const EVENTS: u64 = 20_000;

/// Publishes `EVENTS` events with confirms (persistent for a quorum subscription) and
/// returns how many per second reached the subscriber `queue`.
fn events_per_second(
    publisher: &FabricConfig,
    subscriber: &FabricConfig,
    quorum: bool,
    queue: &str,
) -> f64 {
    let publisher = if quorum {
        publisher.clone().persistent_messages()
    } else {
        publisher.clone()
    };
    let publisher = Fabric::connect(publisher).expect("connect the publisher");
    let subscriber = Fabric::connect(subscriber.clone()).expect("connect the subscriber");
    let (done_tx, done) = std::sync::mpsc::channel();
    let mut seen = 0;
    let builder = subscriber.event_subscriber(queue).topic("bench.#");
    let builder = if quorum { builder.quorum() } else { builder };
    let subscription = builder
        .handle(move |_| {
            seen += 1;
            if seen == EVENTS {
                let _ = done_tx.send(());
            }
        })
        .expect("subscribe");
    let started = Instant::now();
    let mut receipts = std::collections::VecDeque::new();
    for n in 0..EVENTS {
        receipts.push_back(publisher.publish_event("bench.event", &n).expect("publish"));
        if receipts.len() > 256 {
            receipts.pop_front().unwrap().wait().expect("confirmed");
        }
    }
    for receipt in receipts {
        receipt.wait().expect("confirmed");
    }
    done.recv_timeout(Duration::from_secs(120))
        .expect("every event received");
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    drop(subscription);
    rate
}

/// Serves, calls from `CALLERS` threads for `run_for` (after a short warm-up), returns the
/// calls answered per second.
fn calls_per_second(setup: &Setup, run_for: Duration) -> f64 {
    let server_fabric = Fabric::connect(setup.server.clone()).expect("connect the server");
    let builder = EchoServer::new(Echoer).workers(WORKERS);
    let builder = if setup.durable {
        builder.durable()
    } else {
        builder
    };
    let server = builder.serve(&server_fabric).expect("serve");
    let client_fabric = Fabric::connect(setup.client.clone()).expect("connect the client");
    let address = server.address().clone();
    let client = EchoClient::connect(
        &client_fabric,
        address.domain(),
        address.service_type(),
        address.service_id(),
    )
    .expect("a client");
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CALLERS as u64)
        .map(|n| {
            let (client, counting, stop, answered) = (
                client.clone(),
                Arc::clone(&counting),
                Arc::clone(&stop),
                Arc::clone(&answered),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(client.echo(n).expect("a call"), n);
                    if counting.load(Ordering::Relaxed) {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(run_for);
    counting.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a caller panicked");
    }
    let rate = answered.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    eprintln!("{}: {rate:.0} calls/s", setup.name);
    drop(server);
    rate
}
