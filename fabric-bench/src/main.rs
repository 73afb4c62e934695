//! fabric against raw amiquip, in one run, on the same broker: prints a table of each figure
//! with the ratio fabric / raw, and one JSON line per figure for scripts.
//!
//! Usage: `cargo run --release -p fabric-bench [-- --quick]`; `--only rpc|stream|memory` runs
//! one group, `--client NAME` one client alone (see `profile_client`); `--only scale`, how cost
//! grows, runs only when asked for (see `scale.rs`). Built with `--features metrics`
//! (fabric-core's `metrics` feature), `--metrics` installs the Prometheus recorder first, to
//! measure what recording costs; without it the feature runs with no
//! recorder. Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). The machine's CPU is shared by
//! the broker, the bench's clients and servers: read ratios, not absolute figures.

mod cpu;
mod memory;
mod raw;
mod scale;

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, Bytes, Fabric, FabricConfig, Headers};

/// The service both sides run: send bytes back.
#[fabric_service]
pub trait Echo {
    /// Returns the payload.
    fn echo(&self, payload: Bytes) -> Bytes;
}

pub(crate) struct Echoer;

impl Echo for Echoer {
    fn echo(&self, payload: Bytes) -> Bytes {
        payload
    }
}

pub(crate) const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub(crate) const WORKERS: usize = 8;
pub(crate) const PREFETCH: u16 = 1;
const CONFIRM_WINDOW: usize = 256;

/// How many calls and messages each figure uses.
struct Sizes {
    rounds: usize,
    sequential: usize,
    throughput: usize,
    large_factor: usize,
    stream: usize,
}

/// One row of the table: medians over the rounds, and the median of the rounds' ratios.
struct Figure {
    name: String,
    unit: &'static str,
    higher_is_better: bool,
    raw: f64,
    fabric: f64,
    ratio: f64,
}

impl Figure {
    /// A figure from (raw, fabric) pairs measured back to back.
    fn paired(
        name: String,
        unit: &'static str,
        higher_is_better: bool,
        pairs: Vec<(f64, f64)>,
    ) -> Figure {
        Figure {
            name,
            unit,
            higher_is_better,
            raw: median(pairs.iter().map(|p| p.0)),
            fabric: median(pairs.iter().map(|p| p.1)),
            ratio: median(pairs.iter().map(|p| p.1 / p.0)),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(role) = args
        .iter()
        .position(|a| a == "--role")
        .and_then(|i| args.get(i + 1))
    {
        if role.starts_with("scale-") {
            scale::run_role(role, &args);
        } else {
            memory::run_role(role, &args);
        }
        return;
    }
    if args.iter().any(|a| a == "--metrics") {
        install_metrics_recorder();
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only rpc|stream|memory` runs one group of figures.
    let only = arg_value(&args, "--only");
    // `--only scale` is not part of the default run: it takes minutes and many connections.
    if only.as_deref() == Some("scale") {
        scale::run();
        return;
    }
    let side = arg_value(&args, "--side");
    let side = side.as_deref();
    let runs = |group: &str| only.as_deref().is_none_or(|o| o == group);
    let sizes = if quick {
        Sizes {
            rounds: 1,
            sequential: 500,
            throughput: 2000,
            large_factor: 10,
            stream: 10_000,
        }
    } else {
        Sizes {
            rounds: 5,
            sequential: 3000,
            throughput: 10_000,
            large_factor: 10,
            stream: 50_000,
        }
    };
    let domain = format!("bench-{}", std::process::id());
    let server_fabric = Fabric::connect(FabricConfig::new(URL, &domain, "echo", "e1"))
        .unwrap_or_else(|e| panic!("the bench needs RabbitMQ on 127.0.0.1:5672: {e}"));
    let server = EchoServer::new(Echoer)
        .workers(WORKERS)
        .prefetch(PREFETCH)
        .serve(&server_fabric)
        .unwrap();
    let raw_queue = format!("{domain}.raw::echo");
    let raw_server = raw::RawServer::start(&raw_queue, WORKERS, PREFETCH);
    let client_fabric = Fabric::connect(FabricConfig::new(URL, &domain, "caller", "c1")).unwrap();
    let client = EchoClient::connect(&client_fabric, &domain, "echo", "e1").unwrap();

    // `--client NAME` runs one client alone at 64 in flight, to profile it (perf, callgrind).
    if let Some(name) = arg_value(&args, "--client") {
        profile_client(&name, &client, &raw_queue);
        return;
    }
    let mut figures = Vec::new();
    let payloads: &[(&str, usize)] = if runs("rpc") {
        &[("16 B", 16), ("64 KiB", 64 * 1024)]
    } else {
        &[]
    };
    for &(label, size) in payloads {
        let payload = vec![1u8; size];
        let factor = if size > 1024 { sizes.large_factor } else { 1 };
        // Warm both paths up before measuring.
        raw::pipelined_calls(&raw_queue, &payload, 200 / factor, 1);
        sequential_fabric(&client, &payload, 200 / factor);

        // Each round measures raw then fabric back to back; a figure's ratio is the median
        // of the rounds' ratios, which holds when the machine's speed drifts between rounds.
        let calls = sizes.sequential / factor;
        let rounds: Vec<(Vec<u64>, Vec<u64>)> = (0..sizes.rounds)
            .map(|_| {
                let raw = raw::pipelined_calls(&raw_queue, &payload, calls, 1).latencies;
                (raw, sequential_fabric(&client, &payload, calls))
            })
            .collect();
        for (p, name) in [(50.0, "p50"), (99.0, "p99")] {
            let pairs = rounds
                .iter()
                .map(|(raw, fabric)| {
                    (
                        percentile(&mut raw.clone(), p) / 1000.0,
                        percentile(&mut fabric.clone(), p) / 1000.0,
                    )
                })
                .collect();
            figures.push(Figure::paired(
                format!("sequential call {name}, {label}"),
                "µs",
                false,
                pairs,
            ));
        }
        for depth in [1usize, 4, 16, 64] {
            // Fewer calls where each waits for the one before: the time per figure evens out.
            let calls = sizes.throughput.min(1000 * depth) / factor;
            let (mut pipelined, mut threaded) = (Vec::new(), Vec::new());
            let (mut pipelined_cpu, mut threaded_cpu) = (Vec::new(), Vec::new());
            for _ in 0..sizes.rounds {
                let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / calls as f64;
                let before = process_cpu();
                let raw_rate =
                    raw::pipelined_calls(&raw_queue, &payload, calls, depth).calls_per_second();
                let raw_cpu = per_call(process_cpu() - before);
                let before = process_cpu();
                pipelined.push((raw_rate, pipelined_fabric(&client, &payload, calls, depth)));
                pipelined_cpu.push((raw_cpu, per_call(process_cpu() - before)));
                let before = process_cpu();
                threaded.push((raw_rate, threaded_fabric(&client, &payload, calls, depth)));
                threaded_cpu.push((raw_cpu, per_call(process_cpu() - before)));
            }
            let name = format!("calls/s, {depth} in flight, {label}, fabric pipelined");
            figures.push(Figure::paired(name, "calls/s", true, pipelined));
            let threads = if depth == 1 { "thread" } else { "threads" };
            let name = format!("calls/s, {depth} in flight, {label}, fabric {depth} {threads}");
            figures.push(Figure::paired(name, "calls/s", true, threaded));
            if depth == 64 {
                // Both sides with a thread per call in flight. amiquip's `Channel` is not
                // `Sync`, so raw threads each need a channel and a reply queue of their own.
                let threads = (0..sizes.rounds)
                    .map(|_| {
                        let raw = raw::threaded_calls(&raw_queue, &payload, calls, depth);
                        (raw, threaded_fabric(&client, &payload, calls, depth))
                    })
                    .collect();
                let name = format!("calls/s, 64 in flight, {label}, 64 threads on both sides");
                figures.push(Figure::paired(name, "calls/s", true, threads));
                // The bench process's own CPU (client and server) per call: what the broker
                // does not pay, and what a saturated machine takes from the broker.
                let name = format!("CPU per call, 64 in flight, {label}, fabric pipelined");
                figures.push(Figure::paired(name, "µs", false, pipelined_cpu));
                let name = format!("CPU per call, 64 in flight, {label}, fabric 64 threads");
                figures.push(Figure::paired(name, "µs", false, threaded_cpu));
            }
        }
    }
    drop(client);
    drop(server);
    drop(raw_server);

    if runs("stream") {
        let (mut rates, mut cpu) = (Vec::new(), Vec::new());
        for round in 0..sizes.rounds {
            let exchange = format!("{domain}.rawdata");
            let queue = format!("{domain}.rawsub{round}");
            // `--side raw|fabric` runs one side only, to profile it.
            let before = process_cpu();
            let raw = if side != Some("fabric") {
                raw::stream(&exchange, &queue, 16, sizes.stream, CONFIRM_WINDOW)
            } else {
                f64::NAN
            };
            let raw_cpu = process_cpu() - before;
            let fabric = if side != Some("raw") {
                stream_fabric(&domain, round, sizes.stream)
            } else {
                f64::NAN
            };
            let fabric_cpu = process_cpu() - before - raw_cpu;
            rates.push((raw, fabric));
            let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / sizes.stream as f64;
            cpu.push((per_message(raw_cpu), per_message(fabric_cpu)));
        }
        let name = format!("data stream msgs/s, 16 B, confirms window {CONFIRM_WINDOW}");
        figures.push(Figure::paired(name, "msgs/s", true, rates));
        // The client side's own cost: publisher and subscriber, without the broker's.
        let name = "data stream, bench-process CPU per message".to_owned();
        figures.push(Figure::paired(name, "µs", false, cpu));
    }
    let memory = if runs("memory") {
        memory::measure(&domain, sizes.throughput)
    } else {
        Vec::new()
    };
    for (name, raw_kib, fabric_kib) in memory {
        let pair = vec![(raw_kib / 1024.0, fabric_kib / 1024.0)];
        figures.push(Figure::paired(name, "MiB peak RSS", false, pair));
    }
    print_table(&figures, quick);
}

/// Installs the Prometheus recorder (no HTTP listener) for fabric's metrics, with histogram
/// buckets, and runs its upkeep every 5 s as a scraper would.
#[cfg(feature = "metrics")]
fn install_metrics_recorder() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0])
        .and_then(|builder| builder.install_recorder())
        .expect("the Prometheus recorder installs");
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(5));
        handle.run_upkeep();
    });
    eprintln!("fabric-bench: fabric's metrics recorded by the Prometheus recorder");
}

#[cfg(not(feature = "metrics"))]
fn install_metrics_recorder() {
    eprintln!("fabric-bench: --metrics needs the bench built with `--features metrics`");
    std::process::exit(2);
}

/// The value after `flag` on the command line.
fn arg_value(args: &[String], flag: &str) -> Option<String> {
    let index = args.iter().position(|a| a == flag)?;
    args.get(index + 1).cloned()
}

/// 30,000 calls of 16 B at 64 in flight from one client alone, `raw`, `raw-threads`,
/// `fabric-pipelined` or `fabric-threads`; prints calls/s and the process's CPU per call.
fn profile_client(name: &str, client: &EchoClient, raw_queue: &str) {
    const CALLS: usize = 30_000;
    let payload = [1u8; 16];
    let before = process_cpu();
    let rate = match name {
        "raw" => raw::pipelined_calls(raw_queue, &payload, CALLS, 64).calls_per_second(),
        "raw-threads" => raw::threaded_calls(raw_queue, &payload, CALLS, 64),
        "fabric-pipelined" => pipelined_fabric(client, &payload, CALLS, 64),
        "fabric-threads" => threaded_fabric(client, &payload, CALLS, 64),
        other => {
            panic!("unknown client {other:?}: raw, raw-threads, fabric-pipelined or fabric-threads")
        }
    };
    let cpu = (process_cpu() - before).as_secs_f64() * 1e6 / CALLS as f64;
    println!("{name}: {rate:.0} calls/s, {cpu:.1} µs of bench-process CPU per call");
}

fn sequential_fabric(client: &EchoClient, payload: &[u8], calls: usize) -> Vec<u64> {
    (0..calls)
        .map(|_| {
            let start = Instant::now();
            let reply = client.echo(Bytes::from(payload)).unwrap();
            assert_eq!(reply.len(), payload.len());
            start.elapsed().as_nanos() as u64
        })
        .collect()
}

/// `threads` caller threads sharing one client, `calls` in all; calls per second.
pub(crate) fn threaded_fabric(
    client: &EchoClient,
    payload: &[u8],
    calls: usize,
    threads: usize,
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..calls / threads {
                    assert_eq!(
                        client.echo(Bytes::from(payload)).unwrap().len(),
                        payload.len()
                    );
                }
            });
        }
    });
    (calls / threads * threads) as f64 / start.elapsed().as_secs_f64()
}

/// One thread keeping `depth` calls in flight with `start_call`; calls per second.
fn pipelined_fabric(client: &EchoClient, payload: &[u8], calls: usize, depth: usize) -> f64 {
    let rpc = client.rpc();
    let start = Instant::now();
    let mut in_flight = VecDeque::with_capacity(depth);
    for _ in 0..calls {
        if in_flight.len() == depth {
            let call: fabric_core::PendingCall<Bytes> = in_flight.pop_front().unwrap();
            assert_eq!(call.wait().unwrap().len(), payload.len());
        }
        let args = EchoEchoArgs {
            payload: Bytes::from(payload),
        };
        in_flight.push_back(rpc.start_call("echo", &args).unwrap());
    }
    for call in in_flight {
        assert_eq!(call.wait().unwrap().len(), payload.len());
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

/// publish_data of `count` 16-byte messages to a subscriber on another connection; msgs/s
/// from the first publish to the last delivery.
fn stream_fabric(domain: &str, round: usize, count: usize) -> f64 {
    let config = |ty: &str| FabricConfig::new(URL, domain, ty, "s1").publish_window(CONFIRM_WINDOW);
    let subscriber_fabric = Fabric::connect(config("reader")).unwrap();
    let publisher = Fabric::connect(config("sensor")).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let mut received = 0;
    let subscription = subscriber_fabric
        .data_subscriber(&format!("{domain}.fabsub{round}"))
        .handle(move |_| {
            received += 1;
            if received == count {
                done_tx.send(Instant::now()).unwrap();
            }
        })
        .unwrap();
    let body = [7u8; 16];
    let headers = Headers::new();
    let start = Instant::now();
    let mut receipts = VecDeque::with_capacity(CONFIRM_WINDOW);
    for _ in 0..count {
        if receipts.len() == CONFIRM_WINDOW {
            let receipt: fabric_core::Receipt = receipts.pop_front().unwrap();
            receipt.wait().unwrap();
        }
        receipts.push_back(publisher.publish_data(&body, &headers).unwrap());
    }
    for receipt in receipts {
        receipt.wait().unwrap();
    }
    let end = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("messages were lost");
    drop(subscription);
    count as f64 / (end - start).as_secs_f64()
}

/// CPU time used by this process so far (user and system), from /proc/self/stat.
fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    // Linux reports in clock ticks of 1/100 s on every common configuration.
    Duration::from_millis(ticks * 10)
}

fn percentile(samples: &mut [u64], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * p / 100.0).round() as usize;
    samples[index] as f64
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_table(figures: &[Figure], quick: bool) {
    println!(
        "fabric-bench{}: {} CPUs, RabbitMQ on 127.0.0.1, server {WORKERS} workers prefetch {PREFETCH}",
        if quick { " --quick" } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:<52} {:>12} {:>12} {:>13}",
        "figure", "raw amiquip", "fabric", "fabric / raw"
    );
    for f in figures {
        let ratio = f.ratio;
        println!(
            "{:<52} {:>12.1} {:>12.1} {:>12.2}x  ({})",
            f.name, f.raw, f.fabric, ratio, f.unit
        );
    }
    for f in figures {
        println!(
            "{{\"figure\":\"{}\",\"unit\":\"{}\",\"higher_is_better\":{},\"raw\":{:.3},\"fabric\":{:.3},\"ratio\":{:.4}}}",
            f.name, f.unit, f.higher_is_better, f.raw, f.fabric, f.ratio
        );
    }
}
