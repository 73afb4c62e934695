//! Calls per second on a three-node cluster against a single node, and durable RPC (quorum
//! method queues) against classic, on private nodes of this machine (`testing::TestBroker`
//! and `TestCluster`): prints a table.
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
