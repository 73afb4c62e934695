//! RPC through a real RabbitMQ: generated clients and servers, every outcome a call can have.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use fabric_core::{fabric_service, Codec, ConnectionState, Error, Fabric, FabricConfig, RpcClient};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    id: u64,
    items: Vec<String>,
    notes: Option<String>,
    prices: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Point,
    Circle { radius: f64 },
    Polygon(Vec<(i32, i32)>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LookupError {
    NotFound { id: u64 },
    Forbidden(String),
}

/// One method per kind of value a service may take or give.
#[fabric_service]
pub trait Kitchen {
    fn echo_text(&self, text: String) -> String;
    fn reverse(&self, values: Vec<i64>) -> Vec<i64>;
    fn store(&self, order: Order) -> Order;
    fn scale(&self, shape: Shape, factor: f64) -> Shape;
    fn maybe(&self, value: Option<u8>) -> Option<u8>;
    fn nothing(&self);
    fn no_args(&self) -> String;
    fn blob(&self, bytes: Vec<u8>) -> Vec<u8>;
    fn lookup(&self, id: u64) -> Result<String, LookupError>;
    fn explode(&self, message: String) -> u32;
    fn nap(&self, millis: u64) -> u64;
    fn whoami(&self) -> String;
}

/// A kitchen that counts what it ran and can tell when a call started.
#[derive(Default)]
struct Chef {
    name: String,
    calls: AtomicUsize,
    naps_started: Mutex<Option<mpsc::Sender<u64>>>,
    /// Set to end every nap early, so a test need not wait out a long one.
    naps_woken: Arc<(Mutex<bool>, Condvar)>,
}

impl Chef {
    fn named(name: &str) -> Chef {
        Chef {
            name: name.to_owned(),
            ..Chef::default()
        }
    }
}

impl Kitchen for Chef {
    fn echo_text(&self, text: String) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        text
    }
    fn reverse(&self, mut values: Vec<i64>) -> Vec<i64> {
        values.reverse();
        values
    }
    fn store(&self, mut order: Order) -> Order {
        order.items.push("stored".into());
        order
    }
    fn scale(&self, shape: Shape, factor: f64) -> Shape {
        match shape {
            Shape::Circle { radius } => Shape::Circle {
                radius: radius * factor,
            },
            other => other,
        }
    }
    fn maybe(&self, value: Option<u8>) -> Option<u8> {
        value.map(|v| v.wrapping_add(1))
    }
    fn nothing(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn no_args(&self) -> String {
        "plain".into()
    }
    fn blob(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes.iter().map(|b| b.wrapping_add(1)).collect()
    }
    fn lookup(&self, id: u64) -> Result<String, LookupError> {
        match id {
            1 => Ok("one".into()),
            2 => Err(LookupError::Forbidden("secret".into())),
            _ => Err(LookupError::NotFound { id }),
        }
    }
    fn explode(&self, message: String) -> u32 {
        panic!("{message}")
    }
    fn nap(&self, millis: u64) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(started) = &*self.naps_started.lock().unwrap() {
            let _ = started.send(millis);
        }
        let (woken, wake) = &*self.naps_woken;
        let _ = wake.wait_timeout_while(
            woken.lock().unwrap(),
            Duration::from_millis(millis),
            |woken| !*woken,
        );
        millis
    }
    fn whoami(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.name.clone()
    }
}

/// A running kitchen server and a fabric to call it from.
struct Setup {
    domain: String,
    _server_fabric: Fabric,
    server: fabric_core::Server,
    fabric: Fabric,
    client: KitchenClient,
}

fn setup(test: &str, chef: Chef, workers: usize) -> Setup {
    let domain = support::unique_domain(test);
    let server_fabric = support::connect(&domain, "kitchen", "k1");
    let server = KitchenServer::new(chef)
        .workers(workers)
        .serve(&server_fabric)
        .unwrap();
    let fabric = support::connect(&domain, "diner", "d1");
    let client = KitchenClient::connect(&fabric, &domain, "kitchen", "k1").unwrap();
    Setup {
        domain,
        _server_fabric: server_fabric,
        server,
        fabric,
        client,
    }
}

#[test]
fn values_of_every_kind_round_trip_in_both_codecs() {
    let s = setup("types", Chef::default(), 2);
    let order = Order {
        id: 7,
        items: vec!["tea".into(), "ünïcödé ☕".into()],
        notes: None,
        prices: [("tea".to_owned(), 2.5)].into_iter().collect(),
    };
    for codec in [Codec::Bincode, Codec::Json] {
        let c = s.client.with_codec(codec);
        assert_eq!(c.echo_text("hello").unwrap(), "hello");
        assert_eq!(c.echo_text(String::new()).unwrap(), "");
        assert_eq!(c.reverse(vec![1, 2, 3]).unwrap(), vec![3, 2, 1]);
        assert_eq!(c.reverse(vec![]).unwrap(), Vec::<i64>::new());
        let mut stored = order.clone();
        stored.items.push("stored".into());
        assert_eq!(c.store(order.clone()).unwrap(), stored);
        assert_eq!(
            c.scale(Shape::Circle { radius: 1.5 }, 2.0).unwrap(),
            Shape::Circle { radius: 3.0 }
        );
        let polygon = Shape::Polygon(vec![(0, 0), (1, -1)]);
        assert_eq!(c.scale(polygon.clone(), 2.0).unwrap(), polygon);
        assert_eq!(c.scale(Shape::Point, 2.0).unwrap(), Shape::Point);
        assert_eq!(c.maybe(Some(255)).unwrap(), Some(0));
        assert_eq!(c.maybe(None).unwrap(), None);
        c.nothing().unwrap();
        assert_eq!(c.no_args().unwrap(), "plain");
    }
}

#[test]
fn payloads_of_megabytes_round_trip() {
    let s = setup("large", Chef::default(), 1);
    let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let expected: Vec<u8> = big.iter().map(|b| b.wrapping_add(1)).collect();
    assert_eq!(s.client.blob(big.clone()).unwrap(), expected);
    let json = s.client.with_codec(Codec::Json);
    assert_eq!(
        json.blob(big[..512 * 1024].to_vec()).unwrap(),
        expected[..512 * 1024]
    );
}

#[test]
fn the_services_own_errors_arrive_intact() {
    let s = setup("user-errors", Chef::default(), 1);
    for codec in [Codec::Bincode, Codec::Json] {
        let c = s.client.with_codec(codec);
        assert_eq!(c.lookup(1).unwrap(), Ok("one".to_owned()));
        assert_eq!(
            c.lookup(2).unwrap(),
            Err(LookupError::Forbidden("secret".into()))
        );
        assert_eq!(c.lookup(9).unwrap(), Err(LookupError::NotFound { id: 9 }));
        // Untyped, the error is a remote error named after its variant.
        let err = c
            .rpc()
            .call::<_, String>("lookup", &serde_json::json!({"id": 2}));
        let err = match codec {
            Codec::Json => err.unwrap_err(),
            // bincode's `lookup` arguments are a bare u64.
            _ => c.rpc().call::<_, String>("lookup", &(2u64,)).unwrap_err(),
        };
        assert!(
            matches!(&err, Error::Remote { kind, message, .. }
                if kind == "LookupError.Forbidden" && message == r#"Forbidden("secret")"#),
            "{codec:?}: {err:?}"
        );
    }
}

#[test]
fn a_panicking_handler_gives_an_error_reply_and_the_worker_lives_on() {
    // One worker: the call after the panic must be served by the same thread.
    let s = setup("panic", Chef::default(), 1);
    let err = s.client.explode("kaboom").unwrap_err();
    match &err {
        Error::Remote { kind, message, .. } => {
            assert_eq!(kind, "panic");
            assert!(message.contains("kaboom"), "{message}");
        }
        other => panic!("expected a remote panic, got {other:?}"),
    }
    assert_eq!(s.client.echo_text("still here").unwrap(), "still here");
}

#[test]
fn an_undecodable_call_gets_an_error_reply_and_is_not_requeued() {
    let s = setup("undecodable", Chef::default(), 1);
    // `nap` takes `{millis: u64}`: a JSON string is not that, nor is one byte of bincode.
    let json = s.client.rpc().with_codec(Codec::Json);
    let bincode = s.client.rpc().with_codec(Codec::Bincode);
    for err in [
        json.call::<_, u64>("nap", &"not a number").unwrap_err(),
        bincode.call::<_, u64>("nap", &7u8).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::BadArguments { method, message, .. }
                if method == "nap" && message.starts_with("nap() ")),
            "{err:?}"
        );
    }
    // The bad call was acked: the server is free and serves the next one at once.
    assert_eq!(s.client.nap(0).unwrap(), 0);
    let queues = support::rabbitmqctl(&["list_queues", "name", "messages"]);
    let nap_queue = format!("{}.api.kitchen.k1::nap", s.domain);
    let line = queues
        .lines()
        .find(|l| l.starts_with(&nap_queue))
        .expect("the nap queue exists");
    assert!(line.ends_with("\t0"), "messages left in the queue: {line}");
}

#[test]
fn unknown_methods_and_services_fail_at_once() {
    let s = setup("unknown", Chef::default(), 1);
    // Far longer than the test may take: an error must come from the broker's return.
    let raw = s.client.rpc().with_timeout(Duration::from_secs(60));
    let err = raw.call::<_, String>("no_such_method", &()).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownMethod { method, .. } if method == "no_such_method"),
        "{err:?}"
    );
    let ghost = KitchenClient::connect(&s.fabric, &s.domain, "kitchen", "ghost")
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    let err = ghost.no_args().unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchService { service } if service.ends_with("kitchen.ghost")),
        "{err:?}"
    );
    assert!(matches!(
        ghost.health_check(),
        Err(Error::NoSuchService { .. })
    ));
    assert!(s.client.health_check().unwrap());
}

#[test]
fn a_slow_call_times_out_and_a_queued_one_expires_without_running() {
    let (started_tx, started_rx) = mpsc::channel();
    let chef = Chef::default();
    *chef.naps_started.lock().unwrap() = Some(started_tx);
    let s = setup("timeout", chef, 1);
    // The handler holds the only worker for 600 ms; a 100 ms call behind it must time out.
    let slow = {
        let client = s.client.clone();
        std::thread::spawn(move || client.nap(600))
    };
    assert_eq!(
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        600
    );
    let impatient = s.client.with_timeout(Duration::from_millis(100));
    let err = impatient.nap(1).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(slow.join().unwrap().unwrap(), 600);
    // The queued call expired in the broker: the next call to start is this one, not it.
    assert_eq!(s.client.nap(2).unwrap(), 2);
    assert_eq!(started_rx.try_iter().collect::<Vec<_>>(), vec![2]);
}

#[test]
fn fifty_threads_share_one_client_and_each_gets_its_own_answer() {
    let s = setup("threads", Chef::default(), 8);
    let threads: Vec<_> = (0..50)
        .map(|t| {
            let client = s.client.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let text = format!("thread {t} call {i}");
                    assert_eq!(client.echo_text(text.clone()).unwrap(), text);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn one_thread_pipelines_many_calls() {
    let s = setup("pipeline", Chef::default(), 4);
    let rpc = s.client.rpc();
    #[derive(Serialize)]
    struct EchoArgs {
        text: String,
    }
    let calls: Vec<_> = (0..200)
        .map(|i| {
            rpc.start_call::<_, String>(
                "echo_text",
                &EchoArgs {
                    text: format!("call {i}"),
                },
            )
            .unwrap()
        })
        .collect();
    // An abandoned call does not disturb the others.
    drop(
        rpc.start_call::<_, String>(
            "echo_text",
            &EchoArgs {
                text: "dropped".into(),
            },
        )
        .unwrap(),
    );
    for (i, call) in calls.into_iter().enumerate().rev() {
        assert_eq!(call.wait().unwrap(), format!("call {i}"));
    }
}

#[test]
fn two_servers_in_a_clique_share_the_calls() {
    let domain = support::unique_domain("clique");
    let fabric_a = support::connect(&domain, "kitchen", "k1");
    let fabric_b = support::connect(&domain, "kitchen", "k1");
    let _a = KitchenServer::new(Chef::named("a"))
        .workers(2)
        .serve(&fabric_a)
        .unwrap();
    let _b = KitchenServer::new(Chef::named("b"))
        .workers(2)
        .serve(&fabric_b)
        .unwrap();
    let fabric = support::connect(&domain, "diner", "d1");
    let client = KitchenClient::connect(&fabric, &domain, "kitchen", "k1").unwrap();
    let mut seen = HashSet::new();
    // The broker hands calls to the consumers in turn, so 20 calls reach both servers.
    for _ in 0..20 {
        seen.insert(client.whoami().unwrap());
    }
    assert_eq!(seen, ["a".to_owned(), "b".to_owned()].into_iter().collect());
}

#[test]
fn shutdown_finishes_the_call_in_hand() {
    let (started_tx, started_rx) = mpsc::channel();
    let chef = Chef::default();
    *chef.naps_started.lock().unwrap() = Some(started_tx);
    let s = setup("drain", chef, 2);
    let call = {
        let client = s.client.clone();
        std::thread::spawn(move || client.nap(300))
    };
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    s.server.close().unwrap();
    assert_eq!(call.join().unwrap().unwrap(), 300);
    // Stopped: its queues are gone, so a new call is refused at once.
    assert!(matches!(s.client.nap(1), Err(Error::NoSuchService { .. })));
}

#[test]
fn topology_matches_amqp_fabric() {
    let s = setup("topology", Chef::default(), 1);
    let exchange = format!("{}.api.kitchen.k1", s.domain);
    let exchanges =
        support::rabbitmqctl(&["list_exchanges", "name", "type", "durable", "auto_delete"]);
    assert!(
        exchanges
            .lines()
            .any(|l| l == format!("{exchange}\tdirect\tfalse\ttrue")),
        "{exchanges}"
    );
    let queues =
        support::rabbitmqctl(&["list_queues", "name", "durable", "auto_delete", "arguments"]);
    for method in ["echo_text", "lookup", "health_check"] {
        let queue = format!("{exchange}::{method}");
        let line = queues
            .lines()
            .find(|l| l.starts_with(&format!("{queue}\t")))
            .unwrap_or_else(|| panic!("no queue {queue} in\n{queues}"));
        assert!(line.contains("\tfalse\ttrue\t"), "{line}");
        assert!(
            line.contains("x-dead-letter-exchange") && line.contains("rpc.dlx"),
            "{line}"
        );
    }
    let bindings = support::rabbitmqctl(&[
        "list_bindings",
        "source_name",
        "destination_name",
        "routing_key",
    ]);
    let queue = format!("{exchange}::lookup");
    assert!(
        bindings
            .lines()
            .any(|l| l == format!("{exchange}\t{queue}\t{queue}")),
        "{bindings}"
    );
}

#[test]
fn a_closed_fabric_fails_calls_instead_of_hanging() {
    let s = setup("closed", Chef::default(), 1);
    s.fabric.close().unwrap();
    let err = s.client.echo_text("x").unwrap_err();
    assert!(
        matches!(err, Error::Closed | Error::ConnectionLost { .. }),
        "{err:?}"
    );
    assert!(matches!(
        KitchenClient::connect(&s.fabric, &s.domain, "kitchen", "k1"),
        Err(Error::Closed)
    ));
}

#[test]
fn a_call_in_flight_when_the_connection_dies_fails_at_once() {
    let (started_tx, started_rx) = mpsc::channel();
    let chef = Chef::default();
    *chef.naps_started.lock().unwrap() = Some(started_tx);
    let naps_woken = Arc::clone(&chef.naps_woken);
    let s = setup("conn-lost", chef, 1);
    let (states_tx, states_rx) = mpsc::channel();
    let states_tx = Mutex::new(states_tx);
    s.fabric.on_connection_change(move |state| {
        let _ = states_tx.lock().unwrap().send(state.clone());
    });
    let (done_tx, done_rx) = mpsc::channel();
    let client = s.client.clone();
    // The nap outlasts rabbitmqctl however slow it is; the test wakes it at the end.
    std::thread::spawn(move || done_tx.send(client.nap(25_000)).unwrap());
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let connection = support::connection_of(&s.fabric.address().fqn());
    support::rabbitmqctl(&["close_connection", &connection, "rpc test: connection lost"]);
    // The call's timeout is 30 s and the nap 25 s: an answer within 15 s comes from
    // noticing the loss.
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the call hung");
    *naps_woken.0.lock().unwrap() = true;
    naps_woken.1.notify_all();
    assert!(
        matches!(&outcome, Err(Error::CallInterrupted { method, .. }) if method == "nap"),
        "{outcome:?}"
    );
    // The same client handle works again once the fabric has reconnected.
    loop {
        match states_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(ConnectionState::Connected { generation, .. }) if generation >= 2 => break,
            Ok(_) => {}
            Err(e) => panic!("the fabric did not reconnect: {e}"),
        }
    }
    s.fabric.wait_connected(Duration::from_secs(15)).unwrap();
    assert_eq!(s.client.nap(1).unwrap(), 1);
}

/// `Fabric::close` stops the servers made from it before the connection goes: their
/// consumers are cancelled and drained first, so the close itself is clean (amiquip fails a
/// close whose I/O thread met a dropped consumer), and the servers end as if closed.
#[test]
fn closing_a_fabric_stops_its_servers_first_and_closes_cleanly() {
    for round in 0..10 {
        let domain = support::unique_domain("close-serving");
        let config = FabricConfig::new(&support::broker_url(), &domain, "kitchen", "k1")
            .keep_alive(Duration::from_millis(100));
        let fabric = Fabric::connect(config).unwrap();
        let server = KitchenServer::new(Chef::default())
            .workers(4)
            .serve(&fabric)
            .unwrap();
        let diner = support::connect(&domain, "diner", "d1");
        let client = KitchenClient::connect(&diner, &domain, "kitchen", "k1").unwrap();
        assert_eq!(client.echo_text("x").unwrap(), "x");

        assert_eq!(fabric.close(), Ok(()), "round {round}");
        assert!(!server.is_serving(), "round {round}");
        assert_eq!(server.wait(), Ok(()), "round {round}");
    }
}

#[test]
fn clients_are_shareable_handles() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<KitchenClient>();
    shareable::<RpcClient>();
    shareable::<Fabric>();
}
