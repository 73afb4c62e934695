//! Data streams, events, the registry and remote logging across broker failures, on one
//! private RabbitMQ node shared by the file's tests (see `support/private_broker.rs`): a
//! node boots in seconds, so the tests take turns on it rather than each booting its own.
//!
//! Each test prints what it injected and how long recovery took; run with `--nocapture` to
//! see the figures.

mod support;

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use fabric_core::{
    ConnectionState, Error, Fabric, FabricConfig, Headers, LogFilter, LogRecord, RemoteLogger,
    ServiceEvent, ServiceFilter,
};
use log::{Level, Log, Record};

use support::private_broker::PrivateBroker;

/// How long anything expected may take before the test fails (a node boots in 5-20 s).
const PATIENCE: Duration = Duration::from_secs(60);

/// The node of this file, started by the first test that needs it.
static NODE: OnceLock<Mutex<PrivateBroker>> = OnceLock::new();

/// The shared node, running, for this test alone: tests that stop and kill it take turns.
fn node() -> MutexGuard<'static, PrivateBroker> {
    let node = NODE.get_or_init(|| Mutex::new(PrivateBroker::start()));
    // A test that failed while holding the node leaves it usable: it is started again here.
    let mut broker = node.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    broker.start_again();
    broker
}

/// The configuration `PrivateBroker::connect` uses (short heartbeats, so a dead node is
/// noticed soon), to adjust before connecting.
fn config(broker: &PrivateBroker, domain: &str, service_type: &str, id: &str) -> FabricConfig {
    FabricConfig::new(&broker.url(), domain, service_type, id)
        .heartbeat(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(10))
}

fn connect(config: FabricConfig) -> Fabric {
    Fabric::connect(config).expect("connect to the private broker")
}

/// The generation of every connection `fabric` makes from now on, as it happens.
fn connections_of(fabric: &Fabric) -> Receiver<u64> {
    let (sender, generations) = mpsc::channel();
    let sender = Mutex::new(sender);
    fabric.on_connection_change(move |state| {
        if let ConnectionState::Connected { generation, .. } = state {
            let _ = sender.lock().unwrap().send(*generation);
        }
    });
    generations
}

/// Waits for `fabric`'s connection number `generation`.
fn await_connection(generations: &Receiver<u64>, generation: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match generations.recv_timeout(left) {
            Ok(seen) if seen >= generation => return,
            Ok(_) => {}
            Err(e) => panic!("no connection {generation} within {PATIENCE:?}: {e}"),
        }
    }
}

/// Holds a participant's reconnection: its link thread waits inside the first "reconnecting"
/// notification until [`open`](Self::open). A test uses it to keep one participant away
/// while the broker is up (no event of fabric's says "this participant is disconnected and
/// the broker is not", so the test makes that moment last).
struct Gate {
    open: Sender<()>,
    reached: Receiver<()>,
}

impl Gate {
    fn hold(fabric: &Fabric) -> Gate {
        let (open, opened) = mpsc::channel::<()>();
        let (reached_tx, reached) = mpsc::channel();
        let waiting = Mutex::new(Some((opened, reached_tx)));
        fabric.on_connection_change(move |state| {
            if let ConnectionState::Reconnecting { .. } = state {
                let first = waiting.lock().unwrap().take();
                if let Some((opened, reached)) = first {
                    let _ = reached.send(());
                    // A watchdog, not a delay: the test opens the gate long before.
                    let _ = opened.recv_timeout(Duration::from_secs(120));
                }
            }
        });
        Gate { open, reached }
    }

    /// Waits until the participant has lost its connection and is held.
    fn await_held(&self) {
        self.reached
            .recv_timeout(PATIENCE)
            .expect("the participant did not lose its connection");
    }

    fn open(self) {
        let _ = self.open.send(());
    }
}

/// Receives on `messages` until `wanted` says stop, failing after [`PATIENCE`].
fn recv<T>(messages: &Receiver<T>, what: &str) -> T {
    match messages.recv_timeout(PATIENCE) {
        Ok(message) => message,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: nothing within {PATIENCE:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the subscription ended"),
    }
}

/// Publishes data messages `probe-N` until one arrives through `next_body` (which waits up
/// to the time it is given; bodies other than probes are kept in `others`), and returns how
/// long that took.
///
/// A bounded poll: after a broker restart, a non-durable subscriber's queue and binding are
/// declared again by its consumer thread, and fabric has no event for "declared again"; a
/// message published before that is dropped by the exchange (nothing routes it), so the
/// test publishes until one gets through.
fn probe_until_delivered(
    publisher: &Fabric,
    headers: &Headers,
    mut next_body: impl FnMut(Duration) -> Option<String>,
    others: &mut Vec<String>,
) -> Duration {
    let started = Instant::now();
    for n in 0..600 {
        publisher
            .publish_data(format!("probe-{n}").as_bytes(), headers)
            .expect("publish a probe")
            .wait()
            .expect("the broker confirms a probe");
        // Long enough for a routed probe to arrive; a probe that was dropped never will.
        match next_body(Duration::from_millis(100)) {
            Some(body) if body.starts_with("probe-") => return started.elapsed(),
            Some(body) => others.push(body),
            None => {}
        }
    }
    panic!("no probe reached the subscriber after 600 tries");
}

/// The numbers in `bodies` that start with `prefix`, and how many came more than once.
fn numbered(bodies: &[String], prefix: &str) -> (BTreeSet<u32>, usize) {
    let mut seen = BTreeSet::new();
    let mut twice = 0;
    for body in bodies {
        if let Some(n) = body.strip_prefix(prefix).and_then(|n| n.parse().ok()) {
            if !seen.insert(n) {
                twice += 1;
            }
        }
    }
    (seen, twice)
}

#[test]
fn a_killed_broker_fails_pending_receipts_and_subscriptions_resume_on_the_same_handles() {
    let mut broker = node();
    let domain = support::unique_domain("fault-kill");
    let subscriber = broker.connect(&domain, "monitor", "m1");
    let publisher =
        connect(config(&broker, &domain, "sensor", "s1").call_timeout(Duration::from_secs(2)));
    let subscriber_connections = connections_of(&subscriber);
    let publisher_connections = connections_of(&publisher);
    let reading = Headers::new().with("msg_type", "READING");

    // A handler subscription on a non-durable (auto-delete) queue, and an inbox of events
    // on a durable one.
    let (arrived, arrivals) = mpsc::channel();
    let readings = subscriber
        .data_subscriber(&format!("{domain}.readings"))
        .header("msg_type", "READING")
        .handle(move |message| {
            let _ = arrived.send(String::from_utf8_lossy(message.body()).into_owned());
        })
        .unwrap();
    let orders = subscriber
        .event_subscriber(&format!("{domain}.orders"))
        .topic("order.*")
        .durable()
        .inbox()
        .unwrap();
    publisher
        .publish_data(b"before", &reading)
        .unwrap()
        .wait()
        .unwrap();
    publisher
        .publish_event("order.before", &1)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(recv(&arrivals, "data before the kill"), "before");
    assert_eq!(
        orders
            .recv_timeout(PATIENCE)
            .unwrap()
            .unwrap()
            .routing_key(),
        "order.before"
    );

    // Five events wait, unread, in the durable queue (or in the subscriber's prefetch) when
    // the broker dies: fabric publishes them transient, so the restarted broker does not
    // keep them; one is already in the inbox's hand-over, in this process.
    for n in 0..5 {
        publisher
            .publish_event(&format!("order.unread{n}"), &n)
            .unwrap()
            .wait()
            .unwrap();
    }

    // A receipt the broker cannot confirm: with its memory alarm on, it stops reading from
    // publishing connections.
    broker.rabbitmqctl(&["set_vm_memory_high_watermark", "0"]);
    let pending = publisher.publish_data(b"unconfirmed", &reading).unwrap();
    let pending = std::thread::spawn(move || {
        let outcome = pending.wait();
        (outcome, Instant::now())
    });

    let killed = Instant::now();
    broker.kill();
    let (outcome, failed_at) = pending.join().unwrap();
    let receipt_failed_after = failed_at.saturating_duration_since(killed);
    match &outcome {
        Err(Error::ConnectionLost { reason }) => {
            assert!(reason.contains("may or may not"), "{reason}")
        }
        other => panic!("the pending receipt ended with {other:?}"),
    }
    assert!(
        receipt_failed_after < Duration::from_secs(15),
        "the receipt failed only {receipt_failed_after:?} after the kill"
    );

    // A publish with the broker down waits up to the call timeout, then says so.
    let tried = Instant::now();
    let refused = publisher.publish_data(b"while down", &reading);
    let waited = tried.elapsed();
    assert!(
        matches!(refused, Err(Error::Unavailable { .. })),
        "{refused:?}"
    );
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );

    let restarting = Instant::now();
    broker.start_again();
    let booted = restarting.elapsed();
    await_connection(&subscriber_connections, 2);
    await_connection(&publisher_connections, 2);
    let reconnected = restarting.elapsed();

    // Events: the durable queue and its binding survived the restart, so every event
    // published now reaches the same inbox once the subscriber consumes again.
    for n in 0..20 {
        publisher
            .publish_event(&format!("order.after{n}"), &n)
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut events = Vec::new();
    let first_event = loop {
        let event = orders
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("an event after the restart");
        events.push(event.routing_key().to_owned());
        if event.routing_key().starts_with("order.after") {
            break restarting.elapsed();
        }
    };
    while events
        .iter()
        .filter(|k| k.starts_with("order.after"))
        .count()
        < 20
    {
        let event = orders.recv_timeout(PATIENCE).unwrap().expect("20 events");
        events.push(event.routing_key().to_owned());
    }
    let (after, twice) = numbered(&events, "order.after");
    assert_eq!(after.len(), 20, "{events:?}");
    let (unread, unread_twice) = numbered(&events, "order.unread");
    assert_eq!(unread_twice, 0);

    // Data: the auto-delete queue went with the broker; the subscription declares it again.
    let mut others = Vec::new();
    let probing = probe_until_delivered(
        &publisher,
        &reading,
        |wait| arrivals.recv_timeout(wait).ok(),
        &mut others,
    );
    let first_data = restarting.elapsed();
    for n in 0..20 {
        publisher
            .publish_data(format!("after-{n}").as_bytes(), &reading)
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut bodies = others;
    while numbered(&bodies, "after-").0.len() < 20 {
        bodies.push(recv(&arrivals, "data after the restart"));
    }
    let (data_after, data_twice) = numbered(&bodies, "after-");
    assert!(
        !bodies.iter().any(|b| b == "unconfirmed"),
        "a message the broker never confirmed cannot have been routed before the kill"
    );
    assert_eq!(readings.queue(), format!("{domain}.readings"));
    assert_eq!(data_after.len(), 20);

    println!(
        "kill: pending receipt failed {receipt_failed_after:?} after the kill; a publish with \
         the broker down gave Unavailable after {waited:?}; node boot {booted:?}; both \
         participants reconnected {reconnected:?} after the restart began; first event on the \
         durable inbox {first_event:?}, first data message on the resumed auto-delete \
         subscription {first_data:?} (probing {probing:?}); after the restart 20/20 events \
         ({twice} twice), 20/20 data ({data_twice} twice); of 5 unread transient events in \
         the durable queue at the kill, {} arrived ({unread:?}); the unconfirmed message \
         was lost",
        unread.len()
    );
    drop(readings);
    drop(orders);
    let _ = broker.rabbitmqctl(&["delete_queue", &format!("{domain}.orders")]);
}

#[test]
fn after_a_graceful_stop_subscriptions_resume_and_a_waiting_publish_goes_out() {
    let mut broker = node();
    let domain = support::unique_domain("fault-stop");
    let subscriber = broker.connect(&domain, "monitor", "m1");
    let publisher =
        connect(config(&broker, &domain, "sensor", "s1").call_timeout(Duration::from_secs(60)));
    let subscriber_connections = connections_of(&subscriber);
    let reading = Headers::new().with("msg_type", "READING");

    // An inbox of data (auto-delete queue) and a handler of events (auto-delete queue).
    let readings = subscriber
        .data_subscriber(&format!("{domain}.readings"))
        .header("msg_type", "READING")
        .inbox()
        .unwrap();
    let (arrived, event_arrivals) = mpsc::channel();
    let _events = subscriber
        .subscribe_events(&format!("{domain}.alerts"), "alert.#", move |event| {
            let _ = arrived.send(event.routing_key().to_owned());
        })
        .unwrap();
    publisher
        .publish_data(b"before", &reading)
        .unwrap()
        .wait()
        .unwrap();
    publisher
        .publish_event("alert.before", &0)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        readings.recv_timeout(PATIENCE).unwrap().unwrap().body(),
        b"before"
    );
    assert_eq!(
        recv(&event_arrivals, "event before the stop"),
        "alert.before"
    );

    let stopping = Instant::now();
    broker.stop();
    let stopped_in = stopping.elapsed();

    // A publish while the broker is down waits for the connection (up to the call timeout,
    // 60 s here) and goes out on the new one.
    let waiting = {
        let publisher = publisher.clone();
        let reading = reading.clone();
        std::thread::spawn(move || {
            let receipt = publisher.publish_data(b"published while down", &reading)?;
            receipt.wait()?;
            Ok::<Instant, Error>(Instant::now())
        })
    };
    let restarting = Instant::now();
    broker.start_again();
    let booted = restarting.elapsed();
    let confirmed_at = waiting
        .join()
        .unwrap()
        .expect("the waiting publish goes out");
    let waiting_publish = confirmed_at.saturating_duration_since(restarting);
    await_connection(&subscriber_connections, 2);

    // Data: the inbox's queue is declared again on the new connection; probe until it is.
    let body_of =
        |message: fabric_core::Message| String::from_utf8_lossy(message.body()).into_owned();
    let mut bodies = Vec::new();
    let probing = probe_until_delivered(
        &publisher,
        &reading,
        |wait| readings.recv_timeout(wait).unwrap().map(body_of),
        &mut bodies,
    );
    let first_data = restarting.elapsed();
    for n in 0..20 {
        publisher
            .publish_data(format!("after-{n}").as_bytes(), &reading)
            .unwrap()
            .wait()
            .unwrap();
    }
    while numbered(&bodies, "after-").0.len() < 20 {
        let message = readings.recv_timeout(PATIENCE).unwrap();
        bodies.push(body_of(message.expect("data after the restart")));
    }
    let (data_after, data_twice) = numbered(&bodies, "after-");
    assert_eq!(data_after.len(), 20);

    // Events: the handler's queue is declared again too; the data probe above took the
    // same time, but its queue is its own, so publish until an event arrives as well.
    let mut event_probes = 0;
    let first_event = loop {
        publisher
            .publish_event(&format!("alert.probe{event_probes}"), &0)
            .unwrap()
            .wait()
            .unwrap();
        event_probes += 1;
        match event_arrivals.recv_timeout(Duration::from_millis(100)) {
            Ok(key) if key.starts_with("alert.probe") => break restarting.elapsed(),
            Ok(_) | Err(_) => assert!(event_probes < 600, "no event after the restart"),
        }
    };
    for n in 0..20 {
        publisher
            .publish_event(&format!("alert.after{n}"), &n)
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut events = Vec::new();
    while numbered(&events, "alert.after").0.len() < 20 {
        events.push(recv(&event_arrivals, "events after the restart"));
    }
    let (_, events_twice) = numbered(&events, "alert.after");

    println!(
        "graceful stop ({stopped_in:?}): node boot {booted:?}; a publish made while the broker \
         was down was confirmed {waiting_publish:?} after the restart began; first data \
         message on the same inbox {first_data:?} (probing {probing:?}), first event on the \
         same handler {first_event:?}; after the restart 20/20 data ({data_twice} twice), \
         20/20 events ({events_twice} twice)"
    );
}

#[test]
fn a_durable_queue_keeps_what_was_published_while_its_subscriber_was_away() {
    let broker = node();
    let domain = support::unique_domain("fault-away");
    let subscriber = broker.connect(&domain, "inventory", "i1");
    let publisher = broker.connect(&domain, "shop", "o1");
    let subscriber_connections = connections_of(&subscriber);
    let orders = subscriber
        .event_subscriber(&format!("{domain}.stock"))
        .topic("order.*")
        .durable()
        .inbox()
        .unwrap();
    publisher
        .publish_event("order.before", &0)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        orders
            .recv_timeout(PATIENCE)
            .unwrap()
            .unwrap()
            .routing_key(),
        "order.before"
    );

    // The subscriber's connection is closed and held closed while 50 events go out.
    let gate = Gate::hold(&subscriber);
    let away = Instant::now();
    broker.close_connection_of(&subscriber.address().fqn());
    gate.await_held();
    for n in 0..50 {
        publisher
            .publish_event(&format!("order.away{n}"), &n)
            .unwrap()
            .wait()
            .unwrap();
    }
    let queued = broker.rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages",
    ]);
    let depth = queued
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{domain}.stock\t")))
        .map(|n| n.trim().to_owned());
    gate.open();
    await_connection(&subscriber_connections, 2);
    let reconnected = away.elapsed();

    let mut keys = Vec::new();
    let mut redelivered = 0;
    let mut first = None;
    while numbered(&keys, "order.away").0.len() < 50 {
        let event = orders
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("the events published while away");
        first.get_or_insert_with(|| away.elapsed());
        redelivered += usize::from(event.redelivered());
        keys.push(event.routing_key().to_owned());
    }
    let (_, twice) = numbered(&keys, "order.away");
    assert_eq!(depth.as_deref(), Some("50"), "{queued}");
    println!(
        "subscriber connection closed by the broker: 50 events published while it was away \
         were in its durable queue ({depth:?}); reconnected {reconnected:?} after the close \
         (held by the test), first event {first:?}; 50/50 received on the same inbox, \
         {twice} twice, {redelivered} marked redelivered"
    );
    drop(orders);
    let _ = broker.rabbitmqctl(&["delete_queue", &format!("{domain}.stock")]);
}

/// Logs one record through `logger`, as the `log` macros would.
fn emit(logger: &dyn Log, message: &str) {
    logger.log(
        &Record::builder()
            .level(Level::Info)
            .target("shop")
            .args(format_args!("{message}"))
            .build(),
    );
}

#[test]
fn the_log_shipper_keeps_the_newest_records_while_the_broker_is_down_and_ships_them_after() {
    const FLOOD: u64 = 100_000;
    const CAPACITY: usize = 16;
    let mut broker = node();
    let domain = support::unique_domain("fault-logs");
    let shop = broker.connect(&domain, "shop", "s1");
    let tail_fabric = broker.connect(&domain, "log_tail", "t1");
    let shop_connections = connections_of(&shop);
    let tail_connections = connections_of(&tail_fabric);
    let (sender, records) = mpsc::channel::<LogRecord>();
    let _tail = tail_fabric
        .subscribe_logs(&LogFilter::new(), move |record| {
            let _ = sender.send(record);
        })
        .unwrap();
    let logger = RemoteLogger::builder(&shop)
        .capacity(CAPACITY)
        .build()
        .unwrap();
    emit(&logger, "before the stop");
    assert_eq!(
        recv(&records, "a record before the stop").message(),
        "before the stop"
    );

    // The shop stays away until the tail is back, so that what it ships has somewhere to
    // go: the tail's queue is exclusive and goes with its connection.
    let gate = Gate::hold(&shop);
    let stopping = Instant::now();
    broker.stop();
    gate.await_held();
    let noticed = stopping.elapsed();

    // A flood with the broker down never blocks and keeps only the newest records.
    let flooding = Instant::now();
    for i in 0..FLOOD {
        emit(&logger, &format!("flood {i}"));
    }
    for i in 0..10 {
        emit(&logger, &format!("during {i}"));
    }
    let flood_took = flooding.elapsed();
    assert!(
        flood_took < Duration::from_secs(60),
        "log() blocked: {flood_took:?}"
    );
    assert_eq!(logger.queued(), CAPACITY);
    assert!(logger.dropped() >= FLOOD + 10 - CAPACITY as u64);
    assert!(
        !logger.flush_within(Duration::from_millis(50)),
        "nothing can drain while the broker is down"
    );
    assert_eq!(logger.failure(), None, "a lost connection is not a failure");

    let restarting = Instant::now();
    broker.start_again();
    let booted = restarting.elapsed();
    await_connection(&tail_connections, 2);
    // The tail declares its queue again on its new connection; a probe from another logger
    // tells when it has (no event says so; see `probe_until_delivered`).
    let prober = RemoteLogger::builder(&tail_fabric).build().unwrap();
    let mut probes = 0;
    loop {
        emit(&prober, &format!("probe {probes}"));
        probes += 1;
        match records.recv_timeout(Duration::from_millis(100)) {
            Ok(record) if record.message().starts_with("probe") => break,
            Ok(record) => panic!("unexpected record {:?}", record.message()),
            Err(_) => assert!(probes < 600, "the tail did not come back"),
        }
    }
    let tail_back = restarting.elapsed();
    gate.open();
    await_connection(&shop_connections, 2);
    // Drained first: a record logged into a full queue would push out the oldest kept one.
    assert!(
        logger.flush_within(PATIENCE),
        "the kept records were not shipped"
    );
    emit(&logger, "after the restart");

    // The 16 newest records of the outage, then the new one, in order, from the same logger.
    let mut messages = Vec::new();
    while messages.last().map(String::as_str) != Some("after the restart") {
        let record = recv(&records, "the records kept during the outage");
        if record.service_id() == Some("s1") {
            messages.push(record.message().to_owned());
        }
    }
    let shipped_after = restarting.elapsed();
    let during: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("during"))
        .collect();
    let counts = (logger.shipped(), logger.dropped(), logger.queued());
    assert_eq!(during.len(), 10, "{messages:?}");
    assert_eq!(
        messages.len(),
        CAPACITY + 1,
        "{messages:?} (shipped, dropped, queued) {counts:?}"
    );
    assert!(logger.flush_within(PATIENCE));
    assert_eq!(logger.shipped() + logger.dropped(), 1 + FLOOD + 10 + 1);
    println!(
        "log shipper, graceful stop: the shop noticed in {noticed:?}; {FLOOD}+10 records \
         logged in {flood_took:?} with the broker down, {CAPACITY} kept, {} dropped and \
         counted; node boot {booted:?}; the tail was back {tail_back:?} after the restart began ({probes} probes), \
         the kept records and a new one arrived {shipped_after:?} after it, in order",
        logger.dropped()
    );
    logger.close().unwrap();
}

#[test]
fn a_keep_alive_reappears_in_the_registry_after_the_broker_is_killed() {
    let mut broker = node();
    let domain = support::unique_domain("fault-registry");
    let ttl = Duration::from_secs(2);
    let server = connect(
        config(&broker, &domain, "server_app", "a1").keep_alive(Duration::from_millis(300)),
    );
    let watcher = connect(
        config(&broker, &domain, "console", "w1")
            .keep_alive_listen(true)
            .discovery_ttl(ttl),
    );
    let watcher_connections = connections_of(&watcher);
    let only_server = ServiceFilter::any()
        .domain(&domain)
        .service_type("server_app");
    let events = watcher.service_events(&only_server).unwrap();
    let appeared = |events: &fabric_core::ServiceEvents| loop {
        match events.recv_timeout(PATIENCE).unwrap() {
            Some(ServiceEvent::Appeared(info)) => break info,
            Some(_) => {}
            None => panic!("the server did not appear within {PATIENCE:?}"),
        }
    };
    let first = appeared(&events);
    assert_eq!(first.address, *server.address());

    let killed = Instant::now();
    broker.kill();
    // Silent by its TTL while nobody can announce: the directory was not wiped.
    match events.recv_timeout(PATIENCE).unwrap() {
        Some(ServiceEvent::Silent(info)) => assert_eq!(info.address, *server.address()),
        other => panic!("expected the server to go silent, got {other:?}"),
    }
    let silent_after = killed.elapsed();

    let restarting = Instant::now();
    broker.start_again();
    let booted = restarting.elapsed();
    await_connection(&watcher_connections, 2);
    let again = appeared(&events);
    let reappeared = restarting.elapsed();
    assert_eq!(
        again.instance, first.instance,
        "the same participant, announcing again"
    );
    let listed = watcher.list_services(&only_server).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    println!(
        "registry, kill: the server went silent {silent_after:?} after the kill (TTL {ttl:?}); \
         node boot {booted:?}; it reappeared in the watcher's list {reappeared:?} after the \
         restart began"
    );
}
