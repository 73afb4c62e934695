//! Faults on the server side of RPC: poison and malformed calls, an instance losing its
//! connection while it holds a call, a broker restart, and a graceful shutdown under load.
//! Every count and wait is bounded; the broker restart uses a private node of its own.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{
    AmqpProperties, AmqpValue, Connection, ConsumerMessage, ConsumerOptions, FieldTable, Publish,
    QueueDeclareOptions,
};
use crossbeam_channel::{unbounded, Receiver, Sender};
use fabric_core::{fabric_service, CallContext, Codec, Fabric, FabricConfig, BINCODE_CONTENT_TYPE};
use parking_lot::Mutex;
use support::private_broker::PrivateBroker;
use support::{broker_url, connect, connection_of, rabbitmqctl, unique_domain};

#[fabric_service]
pub trait Ledger {
    /// Records `call_id`, takes `millis`, and returns the id.
    fn record(&self, call_id: u64, millis: u64) -> u64;
    /// Reports its delivery to the test; a first delivery then waits until the test
    /// releases it. Returns whether the call was a redelivery.
    fn hold(&self, call_id: u64) -> bool;
}

/// What every instance of a test's service saw, shared between instances.
struct Book {
    /// (instance, call id) for every `record` run.
    records: Mutex<Vec<(&'static str, u64)>>,
    /// Tells the test of each `hold`: (instance, redelivered).
    held: Sender<(&'static str, bool)>,
    /// Ends the wait of a first `hold` delivery.
    release: Receiver<()>,
}

impl Book {
    fn new() -> (Arc<Book>, Receiver<(&'static str, bool)>, Sender<()>) {
        let (held, held_rx) = unbounded();
        let (release_tx, release) = unbounded();
        let book = Book {
            records: Mutex::new(Vec::new()),
            held,
            release,
        };
        (Arc::new(book), held_rx, release_tx)
    }

    /// How many times each call id was run.
    fn runs(&self) -> HashMap<u64, usize> {
        let mut runs = HashMap::new();
        for (_, id) in self.records.lock().iter() {
            *runs.entry(*id).or_insert(0) += 1;
        }
        runs
    }
}

struct Clerk {
    name: &'static str,
    book: Arc<Book>,
}

impl Ledger for Clerk {
    fn record(&self, call_id: u64, millis: u64) -> u64 {
        if millis > 0 {
            std::thread::sleep(Duration::from_millis(millis)); // the work a call takes
        }
        self.book.records.lock().push((self.name, call_id));
        call_id
    }

    fn hold(&self, _call_id: u64) -> bool {
        let call = CallContext::current().expect("a method runs inside a call");
        assert_eq!(call.method(), "hold");
        let redelivered = call.redelivered();
        self.book.held.send((self.name, redelivered)).unwrap();
        if !redelivered {
            let _ = self.book.release.recv_timeout(Duration::from_secs(30));
        }
        redelivered
    }
}

fn clerk(name: &'static str, book: &Arc<Book>) -> fabric_core::ServerBuilder<LedgerServer<Clerk>> {
    LedgerServer::new(Clerk {
        name,
        book: Arc::clone(book),
    })
}

fn record_args(call_id: u64) -> Vec<u8> {
    Codec::Bincode
        .encode(&LedgerRecordArgs { call_id, millis: 0 }, "record args")
        .unwrap()
}

/// Pseudo-random bytes (xorshift), reproducible from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// How many malformed messages of each kind the flood sends (ten kinds).
const BAD_PER_KIND: usize = 50;
const GOOD_CALLS: u64 = 100;
/// How many messages of each kind with strings that are not UTF-8 (three kinds).
const RAW_PER_KIND: usize = 20;

/// The port of the main broker, from its URL.
fn broker_port() -> u16 {
    let url = broker_url();
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or(5672)
}

/// One malformed message of kind `kind` (0..10) and number `n`: its properties and body, and
/// whether it should get an error reply (it has a reply_to).
fn malformed(kind: usize, n: usize, reply_to: &str) -> (AmqpProperties, Vec<u8>, bool) {
    let id = format!("bad-{kind}-{n}");
    let base = AmqpProperties::default()
        .with_content_type(BINCODE_CONTENT_TYPE.to_owned())
        .with_type_("call".to_owned())
        .with_correlation_id(id)
        .with_reply_to(reply_to.to_owned());
    let seed = (kind * 1000 + n) as u64;
    // A well-formed body whose call id no good call uses: if it ran, the book would say so.
    let runnable = record_args(9_000_000 + seed);
    match kind {
        // Random bytes, too short for bincode's two u64 (longer noise may decode).
        0 => (base, noise(seed, 1 + n % 15), true),
        // A content type fabric does not read, on a body that would otherwise run.
        1 => (
            base.with_content_type("text/plain".to_owned()),
            runnable,
            true,
        ),
        // No reply_to: nobody to answer, so it must not run.
        2 => (
            AmqpProperties::default()
                .with_content_type(BINCODE_CONTENT_TYPE.to_owned())
                .with_type_("call".to_owned())
                .with_correlation_id(format!("bad-{kind}-{n}")),
            runnable,
            false,
        ),
        // No correlation id: answered, without one.
        3 => (
            AmqpProperties::default()
                .with_content_type(BINCODE_CONTENT_TYPE.to_owned())
                .with_reply_to(reply_to.to_owned()),
            noise(seed, 15),
            true,
        ),
        // Not a call.
        4 => (base.with_type_("result".to_owned()), runnable, true),
        // A `From` header that is not a string, and a body that is not JSON.
        5 => {
            let mut headers = FieldTable::default();
            headers.insert("From".to_owned(), AmqpValue::LongLongInt(-1));
            let properties = base
                .with_content_type("application/json".to_owned())
                .with_headers(headers);
            (properties, b"{not json".to_vec(), true)
        }
        // Headers of odd types and an empty body.
        6 => {
            let mut nested = FieldTable::default();
            nested.insert("deep".to_owned(), AmqpValue::Boolean(true));
            let mut headers = FieldTable::default();
            headers.insert("From".to_owned(), AmqpValue::FieldTable(nested));
            headers.insert("bytes".to_owned(), AmqpValue::ByteArray(noise(seed, 8)));
            (base.with_headers(headers), Vec::new(), true)
        }
        // A large body of noise (256 KiB), as JSON (which noise never is).
        7 => (
            base.with_content_type("application/json".to_owned()),
            noise(seed, 256 * 1024),
            true,
        ),
        // No content type (read as JSON) and a body of noise.
        8 => (
            AmqpProperties::default()
                .with_correlation_id(format!("bad-{kind}-{n}"))
                .with_reply_to(reply_to.to_owned()),
            noise(seed, 32),
            true,
        ),
        // Valid JSON of the wrong shape.
        _ => (
            base.with_content_type("application/json".to_owned()),
            br#"{"x": 1}"#.to_vec(),
            true,
        ),
    }
}

#[test]
fn a_flood_of_malformed_calls_gets_clear_outcomes_and_the_server_keeps_serving() {
    let domain = unique_domain("flood");
    let (book, _held, _release) = Book::new();
    let server_fabric = connect(&domain, "ledger", "l1");
    let server = clerk("a", &book).workers(4).serve(&server_fabric).unwrap();
    let queue = server.address().method_queue("record");
    let client_fabric = connect(&domain, "client", "c1");
    let client = LedgerClient::connect(&client_fabric, &domain, "ledger", "l1").unwrap();

    // The flood comes from a raw connection of its own, with its own reply queue.
    let mut raw = Connection::insecure_open(&broker_url()).unwrap();
    let channel = raw.open_channel(None).unwrap();
    let replies = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap();
    let consumer = replies
        .consume(ConsumerOptions {
            no_ack: true,
            ..ConsumerOptions::default()
        })
        .unwrap();

    // Good calls from another thread, interleaved with the flood.
    let good = {
        let client = client.clone();
        std::thread::spawn(move || {
            (0..GOOD_CALLS)
                .map(|id| client.record(id, 0))
                .collect::<Vec<_>>()
        })
    };
    let mut expected_replies = BTreeMap::new();
    let mut sent = 0;
    for n in 0..BAD_PER_KIND {
        for kind in 0..10 {
            let (properties, body, answered) = malformed(kind, n, replies.name());
            if answered {
                let id = properties.correlation_id().clone().unwrap_or_default();
                *expected_replies.entry(id).or_insert(0usize) += 1;
            }
            channel
                .basic_publish(
                    "",
                    Publish::with_properties(&body, queue.as_str(), properties),
                )
                .unwrap();
            sent += 1;
        }
    }
    // Strings that are not UTF-8, which only hand-written frames can carry. amiquip (its
    // amq-protocol parser) drops every property of a message with such a short string, so
    // the server sees no reply_to: not run, dropped. A long string in the headers only cuts
    // the header table short; the rest of the call is intact.
    let mut raw_publisher = raw::RawPublisher::connect(broker_port());
    for n in 0..RAW_PER_KIND {
        let good_properties = raw::RawProperties {
            content_type: Some(BINCODE_CONTENT_TYPE.as_bytes().to_vec()),
            correlation_id: Some(format!("raw-{n}").into_bytes()),
            reply_to: Some(replies.name().as_bytes().to_vec()),
            kind: Some(b"call".to_vec()),
            headers: Vec::new(),
        };
        let runnable = record_args(9_500_000 + n as u64);
        let bad_content_type = raw::RawProperties {
            content_type: Some(vec![0xff, 0xfe, b'/', 0xc3]),
            ..good_properties.clone()
        };
        raw_publisher.publish(&queue, &bad_content_type, &runnable);
        let bad_correlation = raw::RawProperties {
            correlation_id: Some(vec![b'r', 0xc3, 0x28, n as u8]),
            ..good_properties.clone()
        };
        raw_publisher.publish(&queue, &bad_correlation, &runnable);
        let bad_header = raw::RawProperties {
            headers: vec![("From".to_owned(), vec![0xff, 0xfe, 0xfd])],
            ..good_properties
        };
        raw_publisher.publish(&queue, &bad_header, &noise(n as u64, 3));
        *expected_replies.entry(format!("raw-{n}")).or_insert(0) += 1;
        sent += 3;
    }
    raw_publisher.close();
    let outcomes = good.join().unwrap();
    for (id, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome, &Ok(id as u64), "good call {id}");
    }

    // Every malformed message with a reply_to gets exactly one error reply.
    let wanted: usize = expected_replies.values().sum();
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut received = 0;
    while received < wanted {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = consumer
            .receiver()
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {received} of {wanted} error replies came"));
        let ConsumerMessage::Delivery(reply) = message else {
            panic!("the reply consumer ended: {message:?}");
        };
        assert_eq!(reply.properties.type_().as_deref(), Some("error"));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let id = reply
            .properties
            .correlation_id()
            .clone()
            .unwrap_or_default();
        // A message that is not a call fabric reads is a bad request; a call whose body
        // does not decode has bad arguments, as a Python server would say: a TypeError.
        let expected = if id.starts_with("bad-1-") || id.starts_with("bad-4-") {
            "bad_request"
        } else {
            "TypeError"
        };
        assert_eq!(body["error"]["type"], expected, "{id}: {body}");
        *got.entry(id).or_insert(0usize) += 1;
        received += 1;
    }
    assert_eq!(got, expected_replies);
    consumer.cancel().unwrap();
    for _ in consumer.receiver().iter() {}

    // Nothing malformed ran; every good call ran once; nothing is left in the queue.
    let runs = book.runs();
    assert!(
        runs.keys().all(|id| *id < GOOD_CALLS),
        "a malformed call ran"
    );
    assert_eq!(runs.len(), GOOD_CALLS as usize);
    assert!(runs.values().all(|n| *n == 1));
    let left = channel.queue_declare_passive(queue.as_str()).unwrap();
    assert_eq!(
        left.declared_message_count(),
        Some(0),
        "messages left in {queue}"
    );
    // And the server still serves.
    assert_eq!(client.record(4242, 0).unwrap(), 4242);
    println!(
        "flood: {sent} malformed messages ({wanted} answerable, each answered once with \
         bad_request), {GOOD_CALLS} good calls all answered, queue empty"
    );
    raw.close().unwrap();
    server.shutdown().unwrap();
}

#[test]
fn a_call_redelivered_after_its_instance_lost_the_connection_is_marked_for_the_handler() {
    let domain = unique_domain("redeliver");
    let (book, held, release) = Book::new();
    // Instance a alone first, so the broker names only its connection after the service.
    let fabric_a = connect(&domain, "ledger", "l1");
    let connection_a = connection_of(&fabric_a.address().fqn());
    let server_a = clerk("a", &book).workers(1).serve(&fabric_a).unwrap();
    let client_fabric = connect(&domain, "client", "c1");
    let client = LedgerClient::connect(&client_fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    let call = client
        .rpc()
        .start_call::<_, bool>("hold", &LedgerHoldArgs { call_id: 1 })
        .unwrap();
    let first = held.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, ("a", false), "a first delivery is not a redelivery");

    // Instance b joins the clique; then a loses its connection while it holds the call.
    let fabric_b = connect(&domain, "ledger", "l1");
    let server_b = clerk("b", &book).workers(1).serve(&fabric_b).unwrap();
    let (state_tx, states) = unbounded();
    fabric_a.on_connection_change(move |state| {
        let _ = state_tx.send(state.clone());
    });
    let closed_at = Instant::now();
    rabbitmqctl(&["close_connection", &connection_a, "fault injection"]);

    // The broker gives the unacked call to b, marked as redelivered.
    let second = held.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(second, ("b", true));
    assert_eq!(call.wait(), Ok(true), "b's answer, the only one");
    let redelivered_after = closed_at.elapsed();
    // a's handler now finishes; its reply cannot go out on the dead channel, and a serves
    // again on its new connection, with the same handle.
    release.send(()).unwrap();
    states
        .recv_timeout(Duration::from_secs(10))
        .expect("a never saw its connection close");
    assert!(
        server_a.wait_serving(Duration::from_secs(30)),
        "a never resumed"
    );
    let resumed_after = closed_at.elapsed();
    for id in 10..20 {
        assert_eq!(client.record(id, 0), Ok(id));
    }
    let runs = book.runs();
    assert!((10..20).all(|id| runs.get(&id) == Some(&1)));
    assert_eq!(client.rpc().timeout(), Duration::from_secs(30));
    println!(
        "redelivery: marked and answered by the other instance {redelivered_after:?} after the \
         connection was closed; the instance resumed after {resumed_after:?}"
    );
    server_b.shutdown().unwrap();
    server_a.shutdown().unwrap();
}

#[test]
fn graceful_shutdown_of_one_instance_under_load_loses_no_call() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 75;
    let domain = unique_domain("drain");
    let (book, _held, _release) = Book::new();
    let fabric_a = connect(&domain, "ledger", "l1");
    let server_a = clerk("a", &book).workers(2).serve(&fabric_a).unwrap();
    let fabric_b = connect(&domain, "ledger", "l1");
    let server_b = clerk("b", &book).workers(2).serve(&fabric_b).unwrap();
    let client_fabric = connect(&domain, "client", "c1");
    let client = LedgerClient::connect(&client_fabric, &domain, "ledger", "l1")
        .unwrap()
        .with_timeout(Duration::from_secs(20));

    let (answered_tx, answered) = unbounded();
    let callers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, answered_tx) = (client.clone(), answered_tx.clone());
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|n| {
                        let id = t * 1000 + n;
                        let outcome = client.record(id, 5);
                        let _ = answered_tx.send(());
                        (id, outcome)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Shut a down once the load runs: after 60 answers.
    for _ in 0..60 {
        answered.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    let started = Instant::now();
    server_a.shutdown().unwrap();
    let drained_in = started.elapsed();
    let ran_by_a_at_shutdown = book.records.lock().iter().filter(|r| r.0 == "a").count();

    let mut failed = Vec::new();
    for caller in callers {
        for (id, outcome) in caller.join().unwrap() {
            if outcome != Ok(id) {
                failed.push((id, outcome));
            }
        }
    }
    assert_eq!(failed, Vec::new(), "calls failed or were answered wrongly");
    let runs = book.runs();
    assert_eq!(runs.len() as u64, THREADS * PER_THREAD);
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "calls run more than once: {twice:?}");
    let by_a = book.records.lock().iter().filter(|r| r.0 == "a").count();
    assert!(by_a > 0, "a took no calls before it shut down");
    assert_eq!(
        by_a, ran_by_a_at_shutdown,
        "a ran a call after shutdown returned"
    );
    println!(
        "drain: {} calls, 0 failed, 0 run twice; a ran {by_a} and shut down in {drained_in:?}",
        THREADS * PER_THREAD
    );
    server_b.shutdown().unwrap();
}

#[test]
fn a_server_resumes_after_its_broker_is_killed_and_restarted() {
    let mut broker = PrivateBroker::start();
    let domain = unique_domain("restart");
    let (book, _held, _release) = Book::new();
    // Retries at most every 500 ms, so the figures below measure the server, not the backoff.
    let config = FabricConfig::new(&broker.url(), &domain, "ledger", "l1")
        .heartbeat(Duration::from_secs(5))
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(500));
    let server_fabric = Fabric::connect(config).unwrap();
    let server = clerk("a", &book).workers(2).serve(&server_fabric).unwrap();
    {
        let client_fabric = broker.connect(&domain, "client", "c1");
        let client = LedgerClient::connect(&client_fabric, &domain, "ledger", "l1").unwrap();
        assert_eq!(client.record(1, 0), Ok(1));
    }
    let (state_tx, states) = unbounded();
    server_fabric.on_connection_change(move |state| {
        let _ = state_tx.send(state.clone());
    });
    std::thread::scope(|scope| {
        // `wait` means "until shutdown": the broker's death must not end it.
        let (waited_tx, waited) = unbounded();
        let server = &server;
        scope.spawn(move || waited_tx.send(server.wait()).unwrap());

        broker.kill();
        // The server's connection is seen gone (an event), and the server says it does not serve.
        states
            .recv_timeout(Duration::from_secs(30))
            .expect("the server never saw its broker die");
        assert!(!server.is_serving());
        broker.start_again();
        let restarted = Instant::now();
        server_fabric
            .wait_connected(Duration::from_secs(60))
            .unwrap();
        let reconnected_after = restarted.elapsed();
        // The same handle serves again once its workers have declared the queues again.
        assert!(
            server.wait_serving(Duration::from_secs(30)),
            "the server never resumed"
        );
        let serving_after = restarted.elapsed();
        // A client of its own: the client side's reconnection is tested elsewhere.
        let client_fabric = broker.connect(&domain, "client", "c1");
        let client = LedgerClient::connect(&client_fabric, &domain, "ledger", "l1").unwrap();
        assert_eq!(client.record(2, 0), Ok(2));
        let first_call_after = restarted.elapsed();
        assert_eq!(client.health_check(), Ok(true));
        assert_eq!(book.runs().len(), 2);
        println!(
            "broker restart: reconnected {reconnected_after:?}, serving {serving_after:?}, first \
             call answered {first_call_after:?} after the node accepted AMQP again"
        );
        assert!(
            waited.try_recv().is_err(),
            "Server::wait returned before shutdown"
        );
        server.shutdown().unwrap();
        let waited = waited.recv_timeout(Duration::from_secs(10));
        assert_eq!(waited, Ok(Ok(())), "Server::wait after shutdown");
    });
    drop(server_fabric);
}

/// Hand-written AMQP frames, for properties no client library sends (strings that are not UTF-8).
mod raw {

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A connection speaking just enough AMQP to publish on channel 1.
    pub struct RawPublisher {
        stream: TcpStream,
    }

    /// The properties of a message, as raw bytes where AMQP has strings.
    #[derive(Default, Clone)]
    pub struct RawProperties {
        pub content_type: Option<Vec<u8>>,
        /// Header name and long-string value, the value's bytes as given.
        pub headers: Vec<(String, Vec<u8>)>,
        pub correlation_id: Option<Vec<u8>>,
        pub reply_to: Option<Vec<u8>>,
        pub kind: Option<Vec<u8>>,
    }

    impl RawPublisher {
        /// Connects to `host:port` as guest/guest on vhost `/` and opens channel 1.
        pub fn connect(port: u16) -> RawPublisher {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut raw = RawPublisher { stream };
            raw.stream.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
            raw.expect_method(10, 10); // connection.start
            let mut start_ok = method(10, 11);
            start_ok.extend(0u32.to_be_bytes()); // client properties: none
            short(&mut start_ok, b"PLAIN");
            long(&mut start_ok, b"\0guest\0guest");
            short(&mut start_ok, b"en_US");
            raw.send(1, 0, &start_ok);
            let tune = raw.expect_method(10, 30);
            let mut tune_ok = method(10, 31);
            tune_ok.extend(&tune[4..10]); // channel max, frame max, as offered
            tune_ok.extend(0u16.to_be_bytes()); // no heartbeats
            raw.send(1, 0, &tune_ok);
            let mut open = method(10, 40);
            short(&mut open, b"/");
            short(&mut open, b"");
            open.push(0);
            raw.send(1, 0, &open);
            raw.expect_method(10, 41);
            let mut channel_open = method(20, 10);
            short(&mut channel_open, b"");
            raw.send(1, 1, &channel_open);
            raw.expect_method(20, 11);
            raw
        }

        /// Publishes `body` to the default exchange with `routing_key`.
        pub fn publish(&mut self, routing_key: &str, properties: &RawProperties, body: &[u8]) {
            let mut publish = method(60, 40);
            publish.extend(0u16.to_be_bytes());
            short(&mut publish, b"");
            short(&mut publish, routing_key.as_bytes());
            publish.push(0);
            self.send(1, 1, &publish);

            let mut flags = 0u16;
            let mut list = Vec::new();
            if let Some(content_type) = &properties.content_type {
                flags |= 1 << 15;
                short(&mut list, content_type);
            }
            if !properties.headers.is_empty() {
                flags |= 1 << 13;
                let mut table = Vec::new();
                for (name, value) in &properties.headers {
                    short(&mut table, name.as_bytes());
                    table.push(b'S');
                    long(&mut table, value);
                }
                long(&mut list, &table);
            }
            if let Some(id) = &properties.correlation_id {
                flags |= 1 << 10;
                short(&mut list, id);
            }
            if let Some(reply_to) = &properties.reply_to {
                flags |= 1 << 9;
                short(&mut list, reply_to);
            }
            if let Some(kind) = &properties.kind {
                flags |= 1 << 5;
                short(&mut list, kind);
            }
            let mut header = Vec::new();
            header.extend(60u16.to_be_bytes());
            header.extend(0u16.to_be_bytes());
            header.extend((body.len() as u64).to_be_bytes());
            header.extend(flags.to_be_bytes());
            header.extend(list);
            self.send(2, 1, &header);
            for chunk in body.chunks(100_000) {
                self.send(3, 1, chunk);
            }
        }

        /// Closes the connection and waits for the broker's close-ok: everything published
        /// before has then been taken by the broker.
        pub fn close(mut self) {
            let mut close = method(10, 50);
            close.extend(200u16.to_be_bytes());
            short(&mut close, b"bye");
            close.extend([0, 0, 0, 0]);
            self.send(1, 0, &close);
            self.expect_method(10, 51);
        }

        fn send(&mut self, kind: u8, channel: u16, payload: &[u8]) {
            let mut frame = vec![kind];
            frame.extend(channel.to_be_bytes());
            frame.extend((payload.len() as u32).to_be_bytes());
            frame.extend(payload);
            frame.push(0xCE);
            self.stream.write_all(&frame).expect("send a frame");
        }

        /// Reads frames until a method frame; panics unless it is `class.method`. Returns its
        /// payload.
        fn expect_method(&mut self, class: u16, id: u16) -> Vec<u8> {
            loop {
                let mut head = [0u8; 7];
                self.stream.read_exact(&mut head).expect("read a frame");
                let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
                let mut payload = vec![0u8; size + 1];
                self.stream.read_exact(&mut payload).expect("read a frame");
                payload.pop();
                if head[0] != 1 {
                    continue; // heartbeats and content
                }
                let got = (
                    u16::from_be_bytes([payload[0], payload[1]]),
                    u16::from_be_bytes([payload[2], payload[3]]),
                );
                assert_eq!(
                    got,
                    (class, id),
                    "unexpected AMQP method: {}",
                    String::from_utf8_lossy(&payload)
                );
                return payload;
            }
        }
    }

    fn method(class: u16, id: u16) -> Vec<u8> {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend(id.to_be_bytes());
        payload
    }

    fn short(out: &mut Vec<u8>, bytes: &[u8]) {
        out.push(u8::try_from(bytes.len()).expect("a short string"));
        out.extend(bytes);
    }

    fn long(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend((bytes.len() as u32).to_be_bytes());
        out.extend(bytes);
    }
}
