//! The gateway against direct fabric calls, in one run, on the same broker and service:
//! `cargo run --release -p fabric-gateway --example bench [-- SECONDS]` (needs `wrk`).
//!
//! An `Echo` service (8 workers) runs in this process. Direct fabric: one thread calling in
//! sequence (p50), then 64 threads sharing one client (calls/s, p50), in JSON as the gateway
//! calls. Through the gateway (in this process, on a free port): `wrk` with 1 connection, then
//! 64, POSTing the same call to `/services/.../echo`. Prints a table; BENCHMARKS.md has the
//! figures.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, Codec, Fabric, FabricConfig, RpcClient};
use fabric_gateway::{Gateway, GatewayConfig};
use serde::Serialize;

#[fabric_service]
pub trait Echo {
    /// Answers its text.
    fn echo(&self, text: String) -> String;
}

struct Impl;

impl Echo for Impl {
    fn echo(&self, text: String) -> String {
        text
    }
}

#[derive(Serialize)]
struct Args<'a> {
    text: &'a str,
}

const TEXT: &str = "0123456789abcdef";

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let url = std::env::var("FABRIC_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let domain = format!("bench-gw-{}", std::process::id());
    let server_fabric = Fabric::connect(
        FabricConfig::new(&url, &domain, "echo", "e1").keep_alive(Duration::from_millis(300)),
    )
    .expect("connect the server (is RabbitMQ running? bash ci/broker.sh)");
    let _server = EchoServer::new(Impl)
        .workers(8)
        .serve(&server_fabric)
        .unwrap();
    let fabric = Fabric::connect(
        FabricConfig::new(&url, &domain, "fabric_gateway", "bench")
            .codec(Codec::Json)
            .keep_alive_listen(true),
    )
    .unwrap();
    let client = RpcClient::new(&fabric, &domain, "echo", "e1")
        .unwrap()
        .with_codec(Codec::Json);

    // Warm up, and let the gateway's fabric hear the contract.
    for _ in 0..500 {
        let _: String = client.call("echo", &Args { text: TEXT }).unwrap();
    }
    let run = Duration::from_secs(seconds);
    let (direct_1, _) = direct(&client, 1, run);
    let (direct_64, direct_64_rate) = direct(&client, 64, run);

    let gateway = Gateway::new(
        fabric.clone(),
        GatewayConfig::default().max_concurrent_calls(512),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, gateway.router()).await });
    let target = format!("http://{address}/services/{domain}/echo/e1/echo");
    let script =
        std::env::temp_dir().join(format!("fabric-gateway-bench-{}.lua", std::process::id()));
    let mut file = std::fs::File::create(&script).unwrap();
    writeln!(
        file,
        "wrk.method = \"POST\"\nwrk.body = '{{\"text\": \"{TEXT}\"}}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\""
    )
    .unwrap();
    let (gateway_1, _) = wrk(&target, &script, 1, seconds);
    let (gateway_64, gateway_64_rate) = wrk(&target, &script, 64, seconds);
    let _ = std::fs::remove_file(&script);

    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
    println!("| figure | fabric direct | through the gateway | gateway / direct |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| p50, 1 in flight | {} | {} | +{} |",
        ms(direct_1),
        ms(gateway_1),
        ms(gateway_1.saturating_sub(direct_1))
    );
    println!(
        "| p50, 64 in flight | {} | {} | +{} |",
        ms(direct_64),
        ms(gateway_64),
        ms(gateway_64.saturating_sub(direct_64))
    );
    println!(
        "| calls/s, 64 in flight (64 threads / 64 connections) | {direct_64_rate:.0} | {gateway_64_rate:.0} | {:.2}x |",
        gateway_64_rate / direct_64_rate
    );
}

/// `threads` threads calling for `run`: the p50 latency and calls per second.
fn direct(client: &RpcClient, threads: usize, run: Duration) -> (Duration, f64) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let latencies = latencies.clone();
            scope.spawn(move || {
                let mut mine = Vec::new();
                while started.elapsed() < run {
                    let call = Instant::now();
                    let _: String = client.call("echo", &Args { text: TEXT }).unwrap();
                    mine.push(call.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = started.elapsed();
    let mut latencies = Arc::try_unwrap(latencies).unwrap().into_inner().unwrap();
    latencies.sort();
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    (latencies[latencies.len() / 2], rate)
}

/// `wrk` with `connections` for `seconds`: the p50 latency and requests per second.
fn wrk(
    target: &str,
    script: &std::path::Path,
    connections: usize,
    seconds: u64,
) -> (Duration, f64) {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
            "-s".to_owned(),
            script.display().to_string(),
            target.to_owned(),
        ])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "the gateway answered errors under load:\n{text}"
    );
    let rate = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p50 = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("50%"))
        .map(|value| duration(value.trim()))
        .unwrap_or_else(|| panic!("no 50% latency in wrk's output:\n{text}"));
    (p50, rate)
}

/// wrk's `1.23ms`, `456.00us`, `1.01s`.
fn duration(text: &str) -> Duration {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => number,
    };
    Duration::from_secs_f64(seconds)
}
