//! `--only shape`: what each part of fabric's message shape and consumption costs the
//! broker. Starting from the fastest raw RPC, each row turns one part on (or the whole of
//! fabric's old shape), and measures, alternating with the fastest in every round: calls/s
//! at 64 in flight from one pipelining thread, the broker's CPU per call, the bench
//! process's CPU per call (client and server), and its context switches per call.

use crate::cpu::{Meter, PerUnit};
use crate::median;
use crate::raw::{self, Ack, RawServer, Shape};

const DEPTH: usize = 64;

/// One row: a name, and the change from the fastest shape.
fn variants() -> Vec<(&'static str, Shape)> {
    let fastest = Shape::fastest;
    let with = |change: fn(&mut Shape)| {
        let mut shape = fastest();
        change(&mut shape);
        shape
    };
    vec![
        ("fastest raw (the ceiling)", fastest()),
        (
            "2 workers, direct reply-to (the issue's ceiling)",
            with(|s| {
                s.workers = 2;
                s.direct_reply_to = true;
            }),
        ),
        (
            "direct reply-to, not an exclusive reply queue",
            with(|s| s.direct_reply_to = true),
        ),
        ("2 workers", with(|s| s.workers = 2)),
        (
            "+ content type, type, delivery mode",
            with(|s| s.protocol_properties = true),
        ),
        ("+ `From` header", with(|s| s.from_header = true)),
        ("+ priority 5", with(|s| s.priority = true)),
        ("+ expiration per call", with(|s| s.expiration = true)),
        ("+ mandatory", with(|s| s.mandatory = true)),
        (
            "+ `traceparent`, `fabric-deadline-ms` headers",
            with(|s| s.trace_headers = true),
        ),
        (
            "+ dead-letter exchange on the method queue",
            with(|s| s.dead_letter = true),
        ),
        (
            "+ reply queue bound to `rpc.dlx`",
            with(|s| s.reply_binding = true),
        ),
        ("ack per call, not `multiple`", with(|s| s.ack = Ack::Each)),
        (
            "prefetch 32 channel-wide, + an idle queue",
            with(|s| {
                s.prefetch = 32;
                s.global_qos = true;
                s.idle_queues = 1;
            }),
        ),
        (
            "prefetch 64 channel-wide, + an idle queue",
            with(|s| {
                s.prefetch = 64;
                s.global_qos = true;
                s.idle_queues = 1;
            }),
        ),
        (
            "prefetch 32 per consumer, + an idle queue",
            with(|s| {
                s.prefetch = 32;
                s.idle_queues = 1;
            }),
        ),
        (
            "prefetch 8 channel-wide, + an idle queue",
            with(|s| {
                s.prefetch = 8;
                s.global_qos = true;
                s.idle_queues = 1;
            }),
        ),
        ("8 workers, prefetch 100 each", with(|s| s.workers = 8)),
        (
            "8 workers, prefetch 1 each",
            with(|s| {
                s.workers = 8;
                s.prefetch = 1;
            }),
        ),
        (
            "8 workers, prefetch 1 each, channel-wide",
            with(|s| {
                s.workers = 8;
                s.prefetch = 1;
                s.global_qos = true;
            }),
        ),
        (
            "8 workers, prefetch 1 channel-wide, + an idle queue each",
            with(|s| {
                s.workers = 8;
                s.prefetch = 1;
                s.global_qos = true;
                s.idle_queues = 1;
            }),
        ),
        ("all of fabric's shape now", Shape::fabric_now()),
        (
            "all of fabric's old shape (same messages)",
            Shape::same_messages(),
        ),
    ]
}

struct Row {
    name: &'static str,
    rate: f64,
    ratio: f64,
    cost: PerUnit,
    fastest_cost: PerUnit,
}

/// Runs the breakdown and prints its table (markdown) and one JSON line per row.
pub fn run(domain: &str, rounds: usize, calls: usize, filter: Option<&str>) {
    let meter = Meter::new();
    let payload = [1u8; 16];
    let fastest = Shape::fastest();
    let fastest_queue = format!("{domain}.shape::fastest");
    let _fastest_server = RawServer::start(&fastest_queue, &fastest);
    raw::pipelined_calls(&fastest_queue, &payload, 2000, DEPTH, &fastest);
    let mut rows = Vec::new();
    for (index, (name, shape)) in variants().into_iter().enumerate() {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let queue = format!("{domain}.shape{index}::echo");
        let server = RawServer::start(&queue, &shape);
        raw::pipelined_calls(&queue, &payload, 1000, DEPTH, &shape);
        let mut measured = Vec::new();
        for _ in 0..rounds {
            let before = meter.sample();
            let base = raw::pipelined_calls(&fastest_queue, &payload, calls, DEPTH, &fastest)
                .calls_per_second();
            let base_cost = meter.since(before, calls);
            let before = meter.sample();
            let rate =
                raw::pipelined_calls(&queue, &payload, calls, DEPTH, &shape).calls_per_second();
            let cost = meter.since(before, calls);
            measured.push((base, rate, base_cost, cost));
        }
        drop(server);
        let costs = |pick: fn(&(f64, f64, PerUnit, PerUnit)) -> PerUnit| {
            let picked: Vec<PerUnit> = measured.iter().map(pick).collect();
            PerUnit {
                process_us: median(picked.iter().map(|c| c.process_us)),
                broker_us: median(picked.iter().map(|c| c.broker_us)),
                switches: median(picked.iter().map(|c| c.switches)),
            }
        };
        rows.push(Row {
            name,
            rate: median(measured.iter().map(|m| m.1)),
            ratio: median(measured.iter().map(|m| m.1 / m.0)),
            cost: costs(|m| m.3),
            fastest_cost: costs(|m| m.2),
        });
        eprintln!("fabric-bench: shape {index}: {name} done");
    }
    println!(
        "| raw RPC, 16 B, 64 in flight, one pipelining thread | calls/s | / fastest | broker CPU per call (fastest) | bench CPU per call (fastest) | context switches per call |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!(
            "| {} | {:.0} | {:.2}x | {:.1} µs ({:.1}) | {:.1} µs ({:.1}) | {:.2} |",
            row.name,
            row.rate,
            row.ratio,
            row.cost.broker_us,
            row.fastest_cost.broker_us,
            row.cost.process_us,
            row.fastest_cost.process_us,
            row.cost.switches
        );
    }
    for row in &rows {
        println!(
            "{{\"shape\":\"{}\",\"calls_per_s\":{:.1},\"ratio_to_fastest\":{:.4},\"broker_us\":{:.2},\"fastest_broker_us\":{:.2},\"process_us\":{:.2},\"switches\":{:.3}}}",
            row.name, row.rate, row.ratio, row.cost.broker_us, row.fastest_cost.broker_us, row.cost.process_us, row.cost.switches
        );
    }
}
