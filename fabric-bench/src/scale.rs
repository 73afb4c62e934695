//! How cost grows (`--only scale`): a service with 1, 10 and 50 methods, 1 to 100 clients of
//! one server, and a registry of 200 announcing services. Counts come from the broker
//! (`rabbitmqctl`), CPU from the kernel (`cpu.rs`), and each server runs in a process of its
//! own (this binary with `--role scale-...`), so its memory and CPU are its own.
//!
//! Prints each table as markdown, as BENCHMARKS.md holds it, then one JSON line per figure.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use amiquip::{
    AmqpValue, ConsumerMessage, ConsumerOptions, ExchangeDeclareOptions, ExchangeType, FieldTable,
};
use fabric_core::{Fabric, FabricConfig, RpcClient, Server, ServiceEvent, ServiceFilter};
use serde::Serialize;

use crate::cpu::{self, Broker, Usage};
use crate::memory::{arg, peak_rss_kib, serve_until_stdin_closes};
use crate::URL;

/// Workers of the measured servers: the issue asks for 8 (prefetch at the default, 1).
const WORKERS: usize = 8;

const BROKER_PORT: u16 = 5672;
/// How long each of the two readings of the broker's idle CPU lasts.
const IDLE: Duration = Duration::from_secs(5);
/// Load runs this long before its measured window, which then lasts `LOAD`.
const WARM_UP: Duration = Duration::from_millis(500);
const LOAD: Duration = Duration::from_secs(4);
/// Calls in flight for the methods question: one thread pipelining over the methods.
const IN_FLIGHT: usize = 64;
/// Caller threads in all for the clients question, spread evenly over the clients.
const CALLERS: usize = 100;
const METHODS: [usize; 3] = [1, 10, 50];
const CLIENTS: [usize; 3] = [1, 10, 100];
const ANNOUNCERS: usize = 200;
/// amqp-fabric's keep-alive interval; the TTL stays at its default of 5 s.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
const LIST_CALLS: usize = 100;

/// The services of 1, 10 and 50 methods. The bench calls them by method name, to spread its
/// calls over the methods, so the generated clients go unused.
#[allow(dead_code)]
mod services {
    use fabric_core::{fabric_service, Fabric, Server};

    /// Generates a service trait of the given methods (`fn m(&self, x: u64) -> u64`, returning
    /// `x`), implemented by `Methods`, and a function serving it.
    macro_rules! service {
        ($service:ident, $server:ident, $serve:ident, [$($method:ident),+]) => {
            #[fabric_service]
            pub trait $service {
                $(fn $method(&self, x: u64) -> u64;)+
            }

            impl $service for Methods {
                $(fn $method(&self, x: u64) -> u64 { x })+
            }

            fn $serve(fabric: &Fabric, workers: usize) -> Server {
                $server::new(Methods)
                    .workers(workers)
                    .serve(fabric)
                    .expect("the server starts")
            }
        };
    }

    /// What every generated service is served by.
    pub struct Methods;

    service!(Methods1, Methods1Server, serve_1, [m00]);
    service!(
        Methods10,
        Methods10Server,
        serve_10,
        [m00, m01, m02, m03, m04, m05, m06, m07, m08, m09]
    );
    service!(
        Methods50,
        Methods50Server,
        serve_50,
        [
            m00, m01, m02, m03, m04, m05, m06, m07, m08, m09, m10, m11, m12, m13, m14, m15, m16,
            m17, m18, m19, m20, m21, m22, m23, m24, m25, m26, m27, m28, m29, m30, m31, m32, m33,
            m34, m35, m36, m37, m38, m39, m40, m41, m42, m43, m44, m45, m46, m47, m48, m49
        ]
    );

    pub fn serve(methods: usize, fabric: &Fabric, workers: usize) -> Server {
        match methods {
            1 => serve_1(fabric, workers),
            10 => serve_10(fabric, workers),
            50 => serve_50(fabric, workers),
            other => panic!("no service of {other} methods: 1, 10 or 50"),
        }
    }
}

use services::serve;

/// The arguments of every method, encoded as the generated `...Args` struct is.
#[derive(Serialize)]
struct Arg {
    x: u64,
}

fn method_names(methods: usize) -> Vec<String> {
    (0..methods).map(|i| format!("m{i:02}")).collect()
}

/// Runs one side in this process, as `--role scale-server` (a server of `--methods` methods
/// with `--workers` workers) or `--role scale-announcers` (`--count` fabrics of service type
/// `--type` announcing themselves, each serving the service of `--methods` methods with one
/// worker, or nothing for 0). Each prints `ready`, serves until stdin closes, closes, and
/// prints its peak RSS in KiB.
pub fn run_role(role: &str, args: &[String]) {
    let domain = arg(args, "--domain");
    match role {
        "scale-server" => {
            let methods: usize = arg(args, "--methods").parse().unwrap();
            let workers: usize = arg(args, "--workers").parse().unwrap();
            let id = format!("s{methods}");
            let fabric = Fabric::connect(FabricConfig::new(URL, domain, "scale", &id)).unwrap();
            let server = serve(methods, &fabric, workers);
            serve_until_stdin_closes();
            drop(server);
            fabric.close().unwrap();
        }
        "scale-announcers" => {
            let count: usize = arg(args, "--count").parse().unwrap();
            let methods: usize = arg(args, "--methods").parse().unwrap();
            let service_type = arg(args, "--type");
            let start = Instant::now();
            // A few threads connect them: each connection's handshake and declarations
            // are round trips, not CPU.
            let participants: Vec<(Fabric, Option<Server>)> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..4)
                    .map(|t| {
                        scope.spawn(move || {
                            (t..count)
                                .step_by(4)
                                .map(|i| {
                                    let config = FabricConfig::new(
                                        URL,
                                        domain,
                                        service_type,
                                        &format!("a{i:03}"),
                                    )
                                    .keep_alive(KEEP_ALIVE);
                                    let fabric = Fabric::connect(config).unwrap();
                                    let server = (methods > 0).then(|| serve(methods, &fabric, 1));
                                    (fabric, server)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .flat_map(|t| t.join().unwrap())
                    .collect()
            });
            println!("connected {:.3}", start.elapsed().as_secs_f64());
            serve_until_stdin_closes();
            std::thread::scope(|scope| {
                for chunk in participants.chunks(count.div_ceil(4).max(1)) {
                    scope.spawn(move || {
                        for (fabric, server) in chunk {
                            if let Some(server) = server {
                                server.close().unwrap();
                            }
                            fabric.close().unwrap();
                        }
                    });
                }
            });
        }
        other => panic!("unknown role {other}"),
    }
    println!("{}", peak_rss_kib());
}

/// A role running in a child process.
struct RoleProcess {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
}

impl RoleProcess {
    fn start(role: &str, domain: &str, args: &[&str]) -> RoleProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--role", role, "--domain", domain])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        RoleProcess { child, out }
    }

    fn line(&mut self) -> String {
        self.out
            .next()
            .expect("the role process ended early")
            .unwrap()
    }

    fn wait_ready(&mut self) {
        assert_eq!(self.line(), "ready");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its stdin, and answers its peak RSS in KiB once it has closed.
    fn stop(mut self) -> f64 {
        drop(self.child.stdin.take());
        let rss = self.line().trim().parse().unwrap_or(f64::NAN);
        assert!(
            self.child.wait().unwrap().success(),
            "a role process failed"
        );
        rss
    }
}

/// What the broker has for a set of connections, from `rabbitmqctl`.
#[derive(Debug)]
struct BrokerView {
    connections: usize,
    channels: usize,
    consumers: usize,
    /// Queues whose names start with the prefix asked for, and the memory they hold.
    queues: usize,
    queue_memory: u64,
    /// Bytes the broker received on the connections, and when that was read.
    received: u64,
    read_at: Instant,
}

/// `rabbitmqctl`'s rows, tab-separated, without headers.
fn rabbitmqctl(args: &[&str]) -> Vec<Vec<String>> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .args(["-q", "--no-table-headers"])
        .output()
        .expect("the bench needs rabbitmqctl for the broker's counts");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The broker's view of the connections whose peer (client) ports are `ports`, and of the
/// queues named `queue_prefix...`. Runs `rabbitmqctl`, which costs the broker CPU: never
/// inside a measured interval.
fn broker_view(ports: &HashSet<u16>, queue_prefix: Option<&str>) -> BrokerView {
    let before = Instant::now();
    let mut view = BrokerView {
        connections: 0,
        channels: 0,
        consumers: 0,
        queues: 0,
        queue_memory: 0,
        received: 0,
        read_at: before,
    };
    let mut connections = HashSet::new();
    for row in rabbitmqctl(&["list_connections", "pid", "peer_port", "recv_oct"]) {
        let port = row.get(1).and_then(|p| p.parse::<u16>().ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            connections.insert(row[0].clone());
            view.received += row.get(2).and_then(|b| b.parse().ok()).unwrap_or(0);
        }
    }
    view.read_at = before + before.elapsed() / 2;
    view.connections = connections.len();
    for row in rabbitmqctl(&["list_channels", "connection", "consumer_count"]) {
        if connections.contains(&row[0]) {
            view.channels += 1;
            view.consumers += row.get(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
    if let Some(prefix) = queue_prefix {
        for row in rabbitmqctl(&["list_queues", "name", "memory"]) {
            if row[0].starts_with(prefix) {
                view.queues += 1;
                view.queue_memory += row.get(1).and_then(|m| m.parse().ok()).unwrap_or(0);
            }
        }
    }
    view
}

/// The broker's CPU at idle, in percent of one core: the lower of two readings of `IDLE`
/// (each a whole period of the broker's 5 s statistics timers), so that a burst of someone
/// else's work on the shared broker during one of them does not count.
fn broker_idle(broker: &Broker) -> f64 {
    let reading = || {
        let (before, start) = (broker.cpu_precise(), Instant::now());
        sleep(IDLE);
        percent(broker.cpu_precise() - before, start.elapsed())
    };
    reading().min(reading())
}

fn percent(cpu: Duration, over: Duration) -> f64 {
    cpu.as_secs_f64() / over.as_secs_f64() * 100.0
}

/// What a measured window of load cost each side.
struct Load {
    calls: u64,
    elapsed: Duration,
    broker: Duration,
    server: Usage,
    local: Usage,
}

impl Load {
    fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn per_call(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.calls as f64
    }
}

/// While loaders count their calls in `done`: `WARM_UP`, then a window of `LOAD` read from
/// the broker, the server process and this one; then tells the loaders to stop.
fn measure(broker: &Broker, server: u32, done: &AtomicU64, stop: &AtomicBool) -> Load {
    sleep(WARM_UP);
    let server_usage = || Usage::of_process(server).unwrap_or_default();
    let (calls, start, broker_cpu, server_before, local) = (
        done.load(Ordering::Relaxed),
        Instant::now(),
        broker.cpu(),
        server_usage(),
        Usage::of_self(),
    );
    sleep(LOAD);
    let load = Load {
        calls: done.load(Ordering::Relaxed) - calls,
        elapsed: start.elapsed(),
        broker: broker.cpu() - broker_cpu,
        server: server_usage().since(&server_before),
        local: Usage::of_self().since(&local),
    };
    stop.store(true, Ordering::Relaxed);
    load
}

/// One thread keeping `IN_FLIGHT` calls in flight, over the methods in turn, until `stop`.
fn pipeline(client: &RpcClient, methods: &[String], done: &AtomicU64, stop: &AtomicBool) {
    let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if in_flight.len() == IN_FLIGHT {
            let call: fabric_core::PendingCall<u64> = in_flight.pop_front().unwrap();
            call.wait().unwrap();
            done.fetch_add(1, Ordering::Relaxed);
        }
        let method = &methods[sent as usize % methods.len()];
        in_flight.push_back(client.start_call(method, &Arg { x: sent }).unwrap());
        sent += 1;
    }
    for call in in_flight {
        call.wait().unwrap();
    }
}

/// A markdown table, and a JSON line per figure.
struct Report {
    tables: Vec<String>,
    json: Vec<String>,
}

impl Report {
    fn table(&mut self, title: &str, header: &[&str], rows: &[Vec<String>]) {
        let mut text = format!("{title}\n\n| {} |\n|", header.join(" | "));
        for i in 0..header.len() {
            text.push_str(if i == 0 { " --- |" } else { " ---: |" });
        }
        for row in rows {
            text.push_str(&format!("\n| {} |", row.join(" | ")));
        }
        println!("{text}\n");
        std::io::stdout().flush().unwrap();
        self.tables.push(text);
    }

    fn figure(&mut self, figure: String, unit: &str, value: f64) {
        self.json.push(format!(
            "{{\"figure\":\"{figure}\",\"unit\":\"{unit}\",\"value\":{value:.3}}}"
        ));
    }
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// Runs the three questions and prints their tables, then the JSON lines.
pub fn run() {
    let broker = Broker::find(BROKER_PORT).expect(
        "the RabbitMQ listening on 127.0.0.1:5672 (a beam.smp holding the port) is not found",
    );
    let domain = format!("scale-{}", std::process::id());
    println!(
        "fabric-bench --only scale: {} CPUs, broker's VM pid {}; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        broker.pid(),
        machine()
    );
    let mut report = Report {
        tables: Vec::new(),
        json: Vec::new(),
    };
    methods(&broker, &domain, &mut report);
    clients(&broker, &domain, &mut report);
    registry(&broker, &domain, &mut report);
    println!("at the end: {}\n", machine());
    for line in &report.json {
        println!("{line}");
    }
}

/// The load average, and the connections on the broker: others' work that the broker's CPU
/// figures include.
fn machine() -> String {
    let load_average = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "load average {}, {} connections on the broker",
        load_average
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        rabbitmqctl(&["list_connections", "pid"]).len()
    )
}

/// A server of 1, 10 and 50 methods with `WORKERS` workers: what the broker holds for it,
/// its memory, the broker's CPU when it idles and per call under load.
fn methods(broker: &Broker, domain: &str, report: &mut Report) {
    let fabric = Fabric::connect(FabricConfig::new(URL, domain, "loader", "l1")).unwrap();
    let mut rows = Vec::new();
    // The broker with this process's client connected and nothing else of the bench's.
    let alone = broker_idle(broker);
    rows.push(vec![
        "none (broker alone)".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!("{alone:.2} %"),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    report.figure("broker CPU at idle, no service".into(), "%", alone);
    if alone > 2.0 {
        println!(
            "warning: the broker uses {alone:.1} % of a core before the bench starts anything: \
             someone else's work, which every broker figure below includes\n"
        );
    }
    for methods in METHODS {
        let workers = WORKERS.to_string();
        let mut server = RoleProcess::start(
            "scale-server",
            domain,
            &["--methods", &methods.to_string(), "--workers", &workers],
        );
        server.wait_ready();
        let ports = cpu::connection_ports(server.pid(), BROKER_PORT);
        let view = broker_view(&ports, Some(&format!("{domain}.api.scale.s{methods}::")));
        let idle = broker_idle(broker);

        let client = RpcClient::new(&fabric, domain, "scale", &format!("s{methods}")).unwrap();
        let names = method_names(methods);
        let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let load = std::thread::scope(|scope| {
            scope.spawn(|| pipeline(&client, &names, &done, &stop));
            measure(broker, server.pid(), &done, &stop)
        });
        let rss = server.stop();

        let name = format!("{methods} method{}", if methods == 1 { "" } else { "s" });
        let broker_per_call = load.per_call(load.broker);
        let server_per_call = load.per_call(load.server.cpu);
        rows.push(vec![
            name.clone(),
            view.queues.to_string(),
            view.consumers.to_string(),
            view.channels.to_string(),
            format!("{:.0} KiB", view.queue_memory as f64 / 1024.0),
            mib(rss),
            format!("{idle:.2} %"),
            format!("{:.0}", load.calls_per_second()),
            format!("{broker_per_call:.0} µs"),
            format!("{server_per_call:.0} µs"),
        ]);
        report.figure(format!("queues, {name}"), "queues", view.queues as f64);
        report.figure(
            format!("consumers, {name}"),
            "consumers",
            view.consumers as f64,
        );
        report.figure(
            format!("channels, {name}"),
            "channels",
            view.channels as f64,
        );
        report.figure(
            format!("broker queue memory, {name}"),
            "KiB",
            view.queue_memory as f64 / 1024.0,
        );
        report.figure(format!("server peak RSS, {name}"), "KiB", rss);
        report.figure(format!("broker CPU at idle, {name}"), "%", idle);
        report.figure(
            format!("calls/s, {IN_FLIGHT} in flight, {name}"),
            "calls/s",
            load.calls_per_second(),
        );
        report.figure(
            format!("broker CPU per call, {name}"),
            "µs",
            broker_per_call,
        );
        report.figure(
            format!("server CPU per call, {name}"),
            "µs",
            server_per_call,
        );
    }
    fabric.close().unwrap();
    report.table(
        &format!(
            "A service of N methods, {WORKERS} workers, prefetch 1; \
             load: {IN_FLIGHT} calls in flight from one thread, over the methods in turn"
        ),
        &[
            "methods",
            "queues",
            "consumers",
            "channels",
            "broker memory of its queues",
            "server peak RSS",
            "broker CPU at idle",
            "calls/s",
            "broker CPU per call",
            "server CPU per call",
        ],
        &rows,
    );
}

/// 1, 10 and 100 clients (a `Fabric` each, its own connection and reply queue) of one
/// server, `CALLERS` caller threads in all spread over them, each calling in turn.
fn clients(broker: &Broker, domain: &str, report: &mut Report) {
    let mut server = RoleProcess::start(
        "scale-server",
        domain,
        &["--methods", "1", "--workers", &WORKERS.to_string()],
    );
    server.wait_ready();
    let mut rows = Vec::new();
    for count in CLIENTS {
        let connecting = Instant::now();
        let clients: Vec<(Fabric, RpcClient)> = (0..count)
            .map(|i| {
                let config = FabricConfig::new(URL, domain, "caller", &format!("c{i:03}"));
                let fabric = Fabric::connect(config).unwrap();
                let client = RpcClient::new(&fabric, domain, "scale", "s1").unwrap();
                let _: u64 = client.call("m00", &Arg { x: 0 }).unwrap();
                (fabric, client)
            })
            .collect();
        let connect_ms = connecting.elapsed().as_secs_f64() * 1e3 / count as f64;
        let view = broker_view(
            &cpu::connection_ports(std::process::id(), BROKER_PORT),
            None,
        );
        let idle = broker_idle(broker);

        let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let load = std::thread::scope(|scope| {
            for t in 0..CALLERS {
                let client = &clients[t % count].1;
                let (done, stop) = (&done, &stop);
                scope.spawn(move || {
                    let mut x = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let _: u64 = client.call("m00", &Arg { x }).unwrap();
                        done.fetch_add(1, Ordering::Relaxed);
                        x += 1;
                    }
                });
            }
            measure(broker, server.pid(), &done, &stop)
        });
        for (fabric, client) in clients {
            drop(client);
            fabric.close().unwrap();
        }

        let name = format!("{count} client{}", if count == 1 { "" } else { "s" });
        let per_call = |cpu| load.per_call(cpu);
        let switches = load.local.switches() as f64 / load.calls as f64;
        rows.push(vec![
            name.clone(),
            format!("{}", CALLERS / count),
            view.connections.to_string(),
            view.channels.to_string(),
            view.consumers.to_string(),
            format!("{connect_ms:.1} ms"),
            format!("{idle:.2} %"),
            format!("{:.0}", load.calls_per_second()),
            format!("{:.0} µs", per_call(load.broker)),
            format!("{:.0} µs", per_call(load.local.cpu)),
            format!("{switches:.1}"),
            format!("{:.0} µs", per_call(load.server.cpu)),
        ]);
        report.figure(
            format!("connections, {name}"),
            "connections",
            view.connections as f64,
        );
        report.figure(
            format!("channels, {name}"),
            "channels",
            view.channels as f64,
        );
        report.figure(
            format!("consumers, {name}"),
            "consumers",
            view.consumers as f64,
        );
        report.figure(format!("connect and first call, {name}"), "ms", connect_ms);
        report.figure(format!("broker CPU at idle, {name}"), "%", idle);
        report.figure(
            format!("calls/s, {name}"),
            "calls/s",
            load.calls_per_second(),
        );
        report.figure(
            format!("broker CPU per call, {name}"),
            "µs",
            per_call(load.broker),
        );
        report.figure(
            format!("clients' CPU per call, {name}"),
            "µs",
            per_call(load.local.cpu),
        );
        report.figure(
            format!("clients' context switches per call, {name}"),
            "",
            switches,
        );
        report.figure(
            format!("server CPU per call, {name}"),
            "µs",
            per_call(load.server.cpu),
        );
    }
    server.stop();
    report.table(
        &format!(
            "N clients of one server (1 method, {WORKERS} workers); a client is a `Fabric` of \
             its own, all in one process; load: {CALLERS} caller threads in all, each calling \
             in turn"
        ),
        &[
            "clients",
            "threads per client",
            "connections",
            "channels",
            "consumers",
            "connect + first call, per client",
            "broker CPU at idle",
            "calls/s",
            "broker CPU per call",
            "clients' CPU per call",
            "clients' context switches per call",
            "server CPU per call",
        ],
        &rows,
    );
}

/// Counts the keep-alives of `domain` on the discovery exchange, and their body bytes, on a
/// raw connection of its own; stops when `stop` is set.
fn count_keep_alives(
    domain: &str,
    ready: crossbeam_channel::Sender<()>,
    counter: &KeepAliveCounter<'_>,
    stop: &AtomicBool,
) {
    let mut connection = crate::raw::connect();
    let channel = connection.open_channel(None).unwrap();
    channel
        .exchange_declare(
            ExchangeType::Headers,
            "msc.discovery",
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
        )
        .unwrap();
    let queue = crate::raw::exclusive_queue(&channel);
    let mut arguments = FieldTable::default();
    for (key, value) in [
        ("x-match", "all"),
        ("msg_type", "keep_alive"),
        ("service_domain", domain),
    ] {
        arguments.insert(key.into(), AmqpValue::LongString(value.into()));
    }
    channel
        .queue_bind(queue.name(), "msc.discovery", "", arguments)
        .unwrap();
    let consumer = queue
        .consume(ConsumerOptions {
            no_ack: true,
            ..ConsumerOptions::default()
        })
        .unwrap();
    ready.send(()).unwrap();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(ConsumerMessage::Delivery(delivery)) =
            consumer.receiver().recv_timeout(Duration::from_millis(100))
        {
            counter.heard.fetch_add(1, Ordering::Relaxed);
            counter
                .bytes
                .fetch_add(delivery.body.len() as u64, Ordering::Relaxed);
        }
    }
    crate::raw::retire(consumer);
    let _ = connection.close();
}

/// Waits until `fabric` has heard `count` participants of `filter` (the registry's own
/// `Appeared` events, a watch starting with one per participant already listed); how long
/// that took from `from`.
fn until_listed(fabric: &Fabric, filter: &ServiceFilter, count: usize, from: Instant) -> f64 {
    let (appeared, heard) = crossbeam_channel::unbounded();
    let _watch = fabric
        .watch_services(filter, move |event| {
            if let ServiceEvent::Appeared(_) = event {
                let _ = appeared.send(());
            }
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for _ in 0..count {
        heard
            .recv_deadline(deadline)
            .expect("the listener never heard them all");
    }
    let took = from.elapsed().as_secs_f64();
    assert!(fabric.list_services(filter).unwrap().len() >= count);
    took
}

/// `ANNOUNCERS` participants announcing every `KEEP_ALIVE`, first each serving the 10-method
/// service with one worker, then serving nothing: their traffic, the broker's CPU, and how
/// long a listener takes to list them.
fn registry(broker: &Broker, domain: &str, report: &mut Report) {
    let listener = listen(domain, "l1");
    let (heard, bytes, stop) = (AtomicU64::new(0), AtomicU64::new(0), AtomicBool::new(false));
    let counter = KeepAliveCounter {
        heard: &heard,
        bytes: &bytes,
    };
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    let rows = std::thread::scope(|scope| {
        scope.spawn(|| count_keep_alives(domain, ready_tx, &counter, &stop));
        ready_rx.recv().unwrap();
        let rows = [10, 0]
            .into_iter()
            .map(|methods| announcing(broker, domain, &listener, &counter, methods, report))
            .collect::<Vec<_>>();
        stop.store(true, Ordering::Relaxed);
        rows
    });
    listener.close().unwrap();
    report.table(
        &format!(
            "The registry: {ANNOUNCERS} participants (a `Fabric` each, all in one process) \
             announcing themselves every {} s, one listener",
            KEEP_ALIVE.as_secs_f64()
        ),
        &[
            "participants",
            "connections / channels / consumers",
            "keep-alives/s",
            "body per keep-alive",
            "bytes/s into the broker",
            "broker CPU",
            "list_services p50 / p99",
            "a new listener lists all after",
            "listed all from their start",
            "their process's peak RSS",
        ],
        &rows,
    );
}

/// A listener of `domain`'s keep-alives.
fn listen(domain: &str, id: &str) -> Fabric {
    Fabric::connect(FabricConfig::new(URL, domain, "listener", id).keep_alive_listen(true)).unwrap()
}

/// What `count_keep_alives` counts.
struct KeepAliveCounter<'a> {
    heard: &'a AtomicU64,
    bytes: &'a AtomicU64,
}

/// One row of the registry's table: `ANNOUNCERS` participants serving the service of
/// `methods` methods with one worker each (none when 0), measured, then closed.
fn announcing(
    broker: &Broker,
    domain: &str,
    listener: &Fabric,
    counter: &KeepAliveCounter<'_>,
    methods: usize,
    report: &mut Report,
) -> Vec<String> {
    let service_type = if methods == 0 { "idler" } else { "announcer" };
    let filter = ServiceFilter::any()
        .domain(domain)
        .service_type(service_type);
    let start = Instant::now();
    let mut announcers = RoleProcess::start(
        "scale-announcers",
        domain,
        &[
            "--count",
            &ANNOUNCERS.to_string(),
            "--methods",
            &methods.to_string(),
            "--type",
            service_type,
        ],
    );
    let first_listed = until_listed(listener, &filter, ANNOUNCERS, start);
    let connected: f64 = announcers
        .line()
        .strip_prefix("connected ")
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    announcers.wait_ready();
    sleep(KEEP_ALIVE);

    let ports = cpu::connection_ports(announcers.pid(), BROKER_PORT);
    let before = broker_view(&ports, None);
    let heard = || {
        (
            counter.heard.load(Ordering::Relaxed),
            counter.bytes.load(Ordering::Relaxed),
        )
    };
    let (counting, (heard_before, bytes_before)) = (Instant::now(), heard());
    let percent_cpu = broker_idle(broker);
    let (counted, (heard_after, bytes_after)) = (counting.elapsed(), heard());
    let after = broker_view(&ports, None);
    let keep_alives = heard_after - heard_before;
    let per_second = keep_alives as f64 / counted.as_secs_f64();
    let body = (bytes_after - bytes_before) as f64 / keep_alives.max(1) as f64;
    let wire_per_second =
        (after.received - before.received) as f64 / (after.read_at - before.read_at).as_secs_f64();

    let mut latencies: Vec<f64> = (0..LIST_CALLS)
        .map(|_| {
            let start = Instant::now();
            let listed = listener.list_services(&filter).unwrap();
            assert_eq!(listed.len(), ANNOUNCERS);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let (p50, p99) = (quantile(0.5), quantile(0.99));

    let joining = Instant::now();
    let late = listen(domain, "l2");
    let late_listed = until_listed(&late, &filter, ANNOUNCERS, joining);
    late.close().unwrap();
    let rss = announcers.stop();

    let name = if methods == 0 {
        format!("{ANNOUNCERS}, serving nothing")
    } else {
        format!("{ANNOUNCERS}, each serving {methods} methods with 1 worker")
    };
    let what = if methods == 0 {
        format!("{ANNOUNCERS} serving nothing")
    } else {
        format!("{ANNOUNCERS} services")
    };
    report.figure(format!("keep-alives/s, {what}"), "msgs/s", per_second);
    report.figure(format!("keep-alive body, {what}"), "B", body);
    report.figure(
        format!("bytes/s into the broker, {what}"),
        "B/s",
        wire_per_second,
    );
    report.figure(format!("broker CPU, {what}"), "%", percent_cpu);
    report.figure(format!("list_services p50, {what}"), "µs", p50);
    report.figure(format!("list_services p99, {what}"), "µs", p99);
    report.figure(
        format!("a new listener lists all, {what}"),
        "s",
        late_listed,
    );
    report.figure(
        format!("listed all from their start, {what}"),
        "s",
        first_listed,
    );
    report.figure(format!("announcers' peak RSS, {what}"), "KiB", rss);
    vec![
        name,
        format!(
            "{} / {} / {}",
            after.connections, after.channels, after.consumers
        ),
        format!("{per_second:.0}"),
        format!("{body:.0} B"),
        format!("{:.0} KiB/s", wire_per_second / 1024.0),
        format!("{percent_cpu:.1} %"),
        format!("{:.2} ms / {:.2} ms", p50 / 1e3, p99 / 1e3),
        format!("{late_listed:.2} s"),
        format!("{first_listed:.1} s ({connected:.1} s to connect)"),
        mib(rss),
    ]
}
