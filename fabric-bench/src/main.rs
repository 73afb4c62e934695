//! fabric against raw amiquip, in one run, on the same broker: prints a table of each figure
//! with the ratio fabric / raw, and one JSON line per figure for scripts.
//!
//! Usage: `cargo run --release -p fabric-bench [-- --quick]`; `--only rpc|stream|memory` runs
//! one group, `--client NAME` one client alone (see `profile_client`), `--payload BYTES
//! [--calls N]` sequential calls of one payload size alone (see `profile_payload`); `--only
//! shape` (what each part of the message shape costs the broker, `shape.rs`) and `--only
//! scale` (how cost grows, `scale.rs`) run only when asked for. Built with `--features
//! metrics` (fabric-core's `metrics` feature), `--metrics` installs the Prometheus recorder
//! first, to measure what recording costs; without it the feature runs with no
//! recorder. Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). The machine's CPU is shared by
//! the broker, the bench's clients and servers: read ratios, not absolute figures.

mod cpu;
mod memory;
mod raw;
mod scale;
mod shape;

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpu::own_cpu;
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
const CONFIRM_WINDOW: usize = 256;
/// The largest payload: 4 MiB.
const LARGEST: usize = 4 << 20;

/// How many calls and messages each figure uses.
struct Sizes {
    rounds: usize,
    sequential: usize,
    throughput: usize,
    large_factor: usize,
    stream: usize,
}

/// One row of the table: medians over the rounds, and the medians of the rounds' ratios.
struct Figure {
    name: String,
    unit: &'static str,
    higher_is_better: bool,
    /// The fastest raw RPC (`raw::Shape::fastest`): the ceiling.
    fastest: f64,
    /// Raw RPC sending fabric's messages (`raw::Shape::same_messages`): the protocol's
    /// baseline.
    raw: f64,
    fabric: f64,
    /// fabric / fastest.
    ceiling_ratio: f64,
    /// fabric / raw.
    ratio: f64,
}

impl Figure {
    /// A figure from (fastest, raw, fabric) measured back to back in each round.
    fn measured(
        name: String,
        unit: &'static str,
        higher_is_better: bool,
        rounds: Vec<(f64, f64, f64)>,
    ) -> Figure {
        Figure {
            name,
            unit,
            higher_is_better,
            fastest: median(rounds.iter().map(|r| r.0)),
            raw: median(rounds.iter().map(|r| r.1)),
            fabric: median(rounds.iter().map(|r| r.2)),
            ceiling_ratio: median(rounds.iter().map(|r| r.2 / r.0)),
            ratio: median(rounds.iter().map(|r| r.2 / r.1)),
        }
    }

    /// A figure with no fastest-raw column (the ceiling is the raw one).
    fn paired(
        name: String,
        unit: &'static str,
        higher_is_better: bool,
        pairs: Vec<(f64, f64)>,
    ) -> Figure {
        let rounds = pairs.into_iter().map(|(raw, fabric)| (raw, raw, fabric));
        Figure::measured(name, unit, higher_is_better, rounds.collect())
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
    let server = EchoServer::new(Echoer).serve(&server_fabric).unwrap();
    let raw_queue = format!("{domain}.raw::echo");
    let same = raw::Shape::same_messages();
    let raw_server = raw::RawServer::start(&raw_queue, &same);
    let fastest_queue = format!("{domain}.fastest::echo");
    let fastest = raw::Shape::fastest();
    let fastest_server = raw::RawServer::start(&fastest_queue, &fastest);
    let client_fabric = Fabric::connect(FabricConfig::new(URL, &domain, "caller", "c1")).unwrap();
    let client = EchoClient::connect(&client_fabric, &domain, "echo", "e1").unwrap();

    if only.as_deref() == Some("shape") {
        let calls = if quick { 3000 } else { 10_000 };
        // `--shapes TEXT` runs the rows whose name holds TEXT.
        shape::run(
            &domain,
            sizes.rounds.min(3),
            calls,
            arg_value(&args, "--shapes").as_deref(),
        );
        return;
    }
    // `--client NAME` runs one client alone at 64 in flight, to profile it (perf, callgrind).
    if let Some(name) = arg_value(&args, "--client") {
        // `--depth N`: calls in flight (64 unless given; 1 is sequential).
        let depth = arg_value(&args, "--depth").map_or(64, |d| d.parse().expect("--depth N"));
        profile_client(&name, &client, &raw_queue, &fastest_queue, depth);
        return;
    }
    // `--payload BYTES [--calls N]`: sequential fabric calls of one size alone (callgrind).
    if let Some(size) = arg_value(&args, "--payload") {
        let size = size.parse().expect("--payload takes a size in bytes");
        let calls = arg_value(&args, "--calls").map(|n| n.parse().expect("--calls takes a count"));
        profile_payload(&client, size, calls);
        return;
    }
    let mut figures = Vec::new();
    let payloads: &[(&str, usize)] = if runs("rpc") {
        &[("16 B", 16), ("64 KiB", 64 * 1024), ("4 MiB", LARGEST)]
    } else {
        &[]
    };
    for &(label, size) in payloads {
        let payload = vec![1u8; size];
        // Fewer calls of larger payloads, so that each size takes about as long.
        let factor = match size {
            LARGEST => sizes.large_factor * sizes.large_factor,
            1025.. => sizes.large_factor,
            _ => 1,
        };
        // Warm every path up before measuring.
        raw::pipelined_calls(&fastest_queue, &payload, 200 / factor, 1, &fastest);
        raw::pipelined_calls(&raw_queue, &payload, 200 / factor, 1, &same);
        sequential_fabric(&client, &payload, 200 / factor);

        // Each round measures the fastest raw, raw with fabric's messages, then fabric, back
        // to back; a figure's ratios are the medians of the rounds' ratios, which hold when
        // the machine's speed drifts between rounds.
        let calls = sizes.sequential / factor;
        let rounds: Vec<[Vec<u64>; 3]> = (0..sizes.rounds)
            .map(|_| {
                [
                    raw::pipelined_calls(&fastest_queue, &payload, calls, 1, &fastest).latencies,
                    raw::pipelined_calls(&raw_queue, &payload, calls, 1, &same).latencies,
                    sequential_fabric(&client, &payload, calls),
                ]
            })
            .collect();
        for (p, name) in [(50.0, "p50"), (99.0, "p99")] {
            let at = |samples: &Vec<u64>| percentile(&mut samples.clone(), p) / 1000.0;
            let triples = rounds
                .iter()
                .map(|[fastest, raw, fabric]| (at(fastest), at(raw), at(fabric)))
                .collect();
            figures.push(Figure::measured(
                format!("sequential call {name}, {label}"),
                "µs",
                false,
                triples,
            ));
        }
        // 4 MiB calls stop at 4 in flight: 64 of them would hold 256 MiB in the broker.
        let depths: &[usize] = if size == LARGEST {
            &[1, 4]
        } else {
            &[1, 4, 16, 64]
        };
        for &depth in depths {
            // Fewer calls where each waits for the one before: the time per figure evens out.
            let calls = sizes.throughput.min(1000 * depth) / factor;
            let (mut pipelined, mut threaded) = (Vec::new(), Vec::new());
            let (mut pipelined_cpu, mut threaded_cpu) = (Vec::new(), Vec::new());
            for _ in 0..sizes.rounds {
                let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / calls as f64;
                let before = own_cpu();
                let fastest_rate =
                    raw::pipelined_calls(&fastest_queue, &payload, calls, depth, &fastest)
                        .calls_per_second();
                let fastest_cpu = per_call(own_cpu() - before);
                let before = own_cpu();
                let raw_rate = raw::pipelined_calls(&raw_queue, &payload, calls, depth, &same)
                    .calls_per_second();
                let raw_cpu = per_call(own_cpu() - before);
                let before = own_cpu();
                let rate = pipelined_fabric(&client, &payload, calls, depth);
                pipelined.push((fastest_rate, raw_rate, rate));
                pipelined_cpu.push((fastest_cpu, raw_cpu, per_call(own_cpu() - before)));
                let before = own_cpu();
                let rate = threaded_fabric(&client, &payload, calls, depth);
                threaded.push((fastest_rate, raw_rate, rate));
                threaded_cpu.push((fastest_cpu, raw_cpu, per_call(own_cpu() - before)));
            }
            let name = format!("calls/s, {depth} in flight, {label}, fabric pipelined");
            figures.push(Figure::measured(name, "calls/s", true, pipelined));
            let threads = if depth == 1 { "thread" } else { "threads" };
            let name = format!("calls/s, {depth} in flight, {label}, fabric {depth} {threads}");
            figures.push(Figure::measured(name, "calls/s", true, threaded));
            if depth == 64 {
                // Both sides with a thread per call in flight. amiquip's `Channel` is not
                // `Sync`, so raw threads each need a channel and a reply queue of their own.
                let threads = (0..sizes.rounds)
                    .map(|_| {
                        let fastest_rate =
                            raw::threaded_calls(&fastest_queue, &payload, calls, depth, &fastest);
                        let raw_rate =
                            raw::threaded_calls(&raw_queue, &payload, calls, depth, &same);
                        (
                            fastest_rate,
                            raw_rate,
                            threaded_fabric(&client, &payload, calls, depth),
                        )
                    })
                    .collect();
                let name = format!("calls/s, 64 in flight, {label}, 64 threads on both sides");
                figures.push(Figure::measured(name, "calls/s", true, threads));
                // The bench process's own CPU (client and server) per call: what the broker
                // does not pay, and what a saturated machine takes from the broker.
                let name = format!("CPU per call, 64 in flight, {label}, fabric pipelined");
                figures.push(Figure::measured(name, "µs", false, pipelined_cpu));
                let name = format!("CPU per call, 64 in flight, {label}, fabric 64 threads");
                figures.push(Figure::measured(name, "µs", false, threaded_cpu));
            }
        }
    }
    drop(client);
    drop(server);
    drop(raw_server);
    drop(fastest_server);

    if runs("stream") {
        let (mut rates, mut cpu) = (Vec::new(), Vec::new());
        for round in 0..sizes.rounds {
            let exchange = format!("{domain}.rawdata");
            let queue = format!("{domain}.rawsub{round}");
            // `--side raw|fabric` runs one side only, to profile it.
            let before = own_cpu();
            let raw = if side != Some("fabric") {
                raw::stream(&exchange, &queue, 16, sizes.stream, CONFIRM_WINDOW)
            } else {
                f64::NAN
            };
            let raw_cpu = own_cpu() - before;
            let fabric = if side != Some("raw") {
                stream_fabric(&domain, round, sizes.stream)
            } else {
                f64::NAN
            };
            let fabric_cpu = own_cpu() - before - raw_cpu;
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

/// 30,000 calls of 16 B at `depth` in flight (10,000 sequential) from one client alone, `fastest` (the fastest raw),
/// `raw`, `raw-threads` (raw with fabric's messages), `fabric-pipelined` or
/// `fabric-threads`; prints calls/s and the process's CPU per call.
fn profile_client(
    name: &str,
    client: &EchoClient,
    raw_queue: &str,
    fastest_queue: &str,
    depth: usize,
) {
    let calls = if depth == 1 { 10_000 } else { 30_000 };
    let payload = [1u8; 16];
    let meter = cpu::Meter::new();
    let threads_before = cpu::switches_by_thread();
    let before = meter.sample();
    let rate = match name {
        "fastest" => raw::pipelined_calls(
            fastest_queue,
            &payload,
            calls,
            depth,
            &raw::Shape::fastest(),
        )
        .calls_per_second(),
        "raw" => {
            let same = raw::Shape::same_messages();
            raw::pipelined_calls(raw_queue, &payload, calls, depth, &same).calls_per_second()
        }
        "raw-threads" => raw::threaded_calls(
            raw_queue,
            &payload,
            calls,
            depth,
            &raw::Shape::same_messages(),
        ),
        "fabric-pipelined" => pipelined_fabric(client, &payload, calls, depth),
        "fabric-threads" => threaded_fabric(client, &payload, calls, depth),
        other => {
            panic!(
                "unknown client {other:?}: fastest, raw, raw-threads, fabric-pipelined or \
                 fabric-threads"
            )
        }
    };
    let cost = meter.since(before, calls);
    // Which threads switched: where the hand-overs of a call are.
    for (thread, after) in cpu::switches_by_thread() {
        let switches = after - threads_before.get(&thread).copied().unwrap_or(0);
        if switches as usize > calls / 20 {
            eprintln!(
                "  {thread}: {:.2} context switches per call",
                switches as f64 / calls as f64
            );
        }
    }
    println!(
        "{name}: {rate:.0} calls/s; per call: {:.1} µs of bench-process CPU, {:.1} µs of \
         broker CPU, {:.2} context switches",
        cost.process_us, cost.broker_us, cost.switches
    );
}

/// `calls` sequential calls of `size` bytes from one client alone, after two to warm up (by
/// default 2000 of 16 B, 200 of 64 KiB, 20 of 4 MiB: at most 80 MiB each way); prints the
/// time and the process's CPU per call. Under `valgrind --tool=callgrind
/// --separate-threads=yes`, two runs with different `calls` give the instructions per call of
/// each thread: the caller's (the main thread) and the server's workers.
fn profile_payload(client: &EchoClient, size: usize, calls: Option<usize>) {
    let calls = calls.unwrap_or(match size {
        0..=1024 => 2000,
        1025..=1_048_576 => 200,
        _ => 20,
    });
    let payload = vec![1u8; size];
    sequential_fabric(client, &payload, 2);
    let before = own_cpu();
    let start = Instant::now();
    sequential_fabric(client, &payload, calls);
    let per_call = |time: Duration| time.as_secs_f64() * 1e6 / calls as f64;
    let (time, cpu) = (per_call(start.elapsed()), per_call(own_cpu() - before));
    println!("{calls} calls of {size} B: {time:.1} µs per call, {cpu:.1} µs of bench-process CPU per call");
}

fn sequential_fabric(client: &EchoClient, payload: &[u8], calls: usize) -> Vec<u64> {
    (0..calls)
        .map(|_| {
            let start = Instant::now();
            let reply = client.echo(payload).unwrap();
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
                    assert_eq!(client.echo(payload).unwrap().len(), payload.len());
                }
            });
        }
    });
    (calls / threads * threads) as f64 / start.elapsed().as_secs_f64()
}

/// The arguments of `echo` as the generated client sends them: what encodes as its payload.
#[derive(serde::Serialize)]
struct Lent<P> {
    payload: P,
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
        // `EchoEchoArgs`, lent: the same body, without copying the payload into a `Bytes`.
        let args = Lent {
            payload: fabric_core::Arg::<Bytes>::wire(&payload),
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

fn percentile(samples: &mut [u64], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * p / 100.0).round() as usize;
    samples[index] as f64
}

pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_table(figures: &[Figure], quick: bool) {
    println!(
        "fabric-bench{}: {} CPUs, RabbitMQ on 127.0.0.1, fabric's server at its defaults",
        if quick { " --quick" } else { "" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<56} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "figure", "fastest raw", "raw, same", "fabric", "/ fastest", "/ same"
    );
    for f in figures {
        println!(
            "{:<56} {:>12.1} {:>12.1} {:>12.1} {:>9.2}x {:>9.2}x  ({})",
            f.name, f.fastest, f.raw, f.fabric, f.ceiling_ratio, f.ratio, f.unit
        );
    }
    for f in figures {
        println!(
            "{{\"figure\":\"{}\",\"unit\":\"{}\",\"higher_is_better\":{},\"fastest\":{:.3},\"raw\":{:.3},\"fabric\":{:.3},\"ratio_to_fastest\":{:.4},\"ratio\":{:.4}}}",
            f.name, f.unit, f.higher_is_better, f.fastest, f.raw, f.fabric, f.ceiling_ratio, f.ratio
        );
    }
}
