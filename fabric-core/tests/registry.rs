//! Keep-alives and the registry through a real RabbitMQ, with Rust and Python participants.
//!
//! Every wait is for an event, bounded generously (`WAIT`); a fixed wait appears only where
//! a test shows that something does *not* happen within a span (a busy server staying
//! listed). The Python tests need `python3` with `amqp-fabric` (`pip install amqp-fabric`); a
//! missing one fails them with that instruction.

mod support;

use support::python::Peer;

use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fabric_core::{
    fabric_service, ConnectionState, Error, Fabric, FabricConfig, ServiceEvent, ServiceEvents,
    ServiceFilter, ServiceInfo,
};
use serde_json::Value;

/// The longest any test waits for an event that should come.
const WAIT: Duration = Duration::from_secs(15);
/// The keep-alive interval of the tests' announcers.
const BEAT: Duration = Duration::from_millis(200);

#[fabric_service]
pub trait Gate {
    fn pass(&self, x: i64) -> i64;
}

/// Lets every call through at once.
struct Open;

impl Gate for Open {
    fn pass(&self, x: i64) -> i64 {
        x
    }
}

/// Holds each call until the test lets it go.
struct Turnstile {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Gate for Turnstile {
    fn pass(&self, x: i64) -> i64 {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv_timeout(WAIT * 2);
        x
    }
}

fn connect(config: FabricConfig) -> Fabric {
    Fabric::connect(config).unwrap_or_else(|e| {
        panic!(
            "these tests need RabbitMQ at {} (set FABRIC_TEST_URL to use another): {e}\n\
             start one with `bash ci/broker.sh`",
            support::broker_url()
        )
    })
}

fn config(domain: &str, service_type: &str, service_id: &str) -> FabricConfig {
    FabricConfig::new(&support::broker_url(), domain, service_type, service_id)
}

/// A participant that announces itself every `interval`.
fn announcer(domain: &str, service_type: &str, service_id: &str, interval: Duration) -> Fabric {
    connect(config(domain, service_type, service_id).keep_alive(interval))
}

/// A participant that listens, with the given TTL.
fn listener(domain: &str, ttl: Duration) -> Fabric {
    connect(
        config(domain, "watcher", "w1")
            .keep_alive_listen(true)
            .discovery_ttl(ttl),
    )
}

/// The next event that passes `wanted`, waiting at most `WAIT`; the others are skipped.
fn wait_for(
    events: &ServiceEvents,
    what: &str,
    wanted: impl Fn(&ServiceEvent) -> bool,
) -> ServiceEvent {
    let deadline = Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left).expect("the watch ended") {
            Some(event) if wanted(&event) => return event,
            Some(event) => skipped.push(event),
            None => panic!("waited {WAIT:?} for {what} in vain; other events: {skipped:#?}"),
        }
    }
}

fn appeared(event: &ServiceEvent) -> bool {
    matches!(event, ServiceEvent::Appeared(_))
}

fn fqns(services: &[ServiceInfo]) -> Vec<String> {
    services.iter().map(|s| s.address.fqn()).collect()
}

#[test]
fn keep_alives_carry_identity_methods_and_load_even_when_every_worker_is_busy() {
    let domain = support::unique_domain("reg-heard");
    let test_started = SystemTime::now();
    // Seven keep-alives to a TTL: slack for a loaded machine, short enough to outlast below.
    let ttl = Duration::from_millis(1500);
    let watcher = listener(&domain, ttl);
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain).service_type("gate"))
        .unwrap();

    let gate = connect(
        config(&domain, "gate", "g1")
            .keep_alive(BEAT)
            .version("1.2.3"),
    );
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let turnstile = Turnstile {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    };
    let _server = GateServer::new(turnstile).workers(1).serve(&gate).unwrap();

    // The first keep-alive may predate the server; wait for one that names its methods.
    let serves = |e: &ServiceEvent| {
        e.info()
            .methods
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "pass"))
    };
    let info = wait_for(&events, "a keep-alive naming `pass`", serves).into_info();
    assert_eq!(info.address, *gate.address());
    assert!(info.instance.is_some());
    assert_eq!(info.version.as_deref(), Some("1.2.3"));
    assert!(info.host.as_deref().is_some_and(|h| !h.is_empty()));
    assert_eq!(info.pid, Some(std::process::id()));
    let started_at = info.started_at.expect("a start time");
    assert!(started_at >= test_started - Duration::from_secs(1) && started_at <= SystemTime::now());
    let methods = info.methods.clone().unwrap();
    assert!(methods.contains(&"health_check".to_owned()), "{methods:?}");
    assert_eq!((info.workers, info.in_flight), (Some(1), Some(0)));
    assert!(info.raw["fabric"].is_string(), "{}", info.raw);
    assert_eq!(info.raw["servers"][0]["service"], "Gate", "{}", info.raw);

    let listed = watcher
        .list_services(&ServiceFilter::from(gate.address()))
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0].instance, info.instance);
    assert!(listed[0].age() < ttl);

    // Occupy the only worker: the keep-alives, from a thread of their own, go on and say so.
    let client = GateClient::connect(&watcher, &domain, "gate", "g1").unwrap();
    let call = std::thread::spawn(move || client.pass(7));
    entered
        .recv_timeout(WAIT)
        .expect("the call never reached the worker");
    let busy = |e: &ServiceEvent| matches!(e, ServiceEvent::Updated(i) if i.in_flight == Some(1));
    wait_for(&events, "a keep-alive with one call in flight", busy);
    // Two TTLs with the worker busy: the server must stay listed throughout.
    let span_ends = Instant::now() + ttl * 2;
    while let Some(left) = span_ends.checked_duration_since(Instant::now()) {
        if let Some(event) = events.recv_timeout(left).unwrap() {
            assert!(
                matches!(event, ServiceEvent::Updated(_)),
                "a busy server must not look gone: {event:#?}"
            );
        }
    }
    assert_eq!(
        watcher
            .list_services(&ServiceFilter::from(gate.address()))
            .unwrap()
            .len(),
        1
    );

    release.send(()).unwrap();
    assert_eq!(call.join().unwrap().unwrap(), 7);
    let idle = |e: &ServiceEvent| matches!(e, ServiceEvent::Updated(i) if i.in_flight == Some(0));
    wait_for(&events, "a keep-alive with no call in flight", idle);
}

#[test]
fn a_participant_that_stops_announcing_goes_silent_after_the_ttl() {
    let domain = support::unique_domain("reg-ttl");
    let ttl = Duration::from_secs(1);
    let watcher = listener(&domain, ttl);
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain))
        .unwrap();
    // Announces once as it connects, then not for a minute: silent, as far as a 1 s TTL goes.
    let quiet = announcer(&domain, "quiet", "q1", Duration::from_secs(60));

    let heard = wait_for(&events, "the first keep-alive", appeared).into_info();
    assert_eq!(heard.address, *quiet.address());
    assert_eq!(
        watcher
            .list_services(&ServiceFilter::any().domain(&domain))
            .unwrap()
            .len(),
        1
    );

    let silent = wait_for(&events, "silence", |e| matches!(e, ServiceEvent::Silent(_)));
    assert_eq!(silent.info().address, *quiet.address());
    assert!(
        heard.last_heard.elapsed() >= ttl,
        "silent after {:?}, before the TTL",
        heard.last_heard.elapsed()
    );
    assert!(watcher
        .list_services(&ServiceFilter::any().domain(&domain))
        .unwrap()
        .is_empty());
}

#[test]
fn servers_starting_and_stopping_are_announced_at_once() {
    let domain = support::unique_domain("reg-servers");
    let watcher = listener(&domain, Duration::from_secs(120));
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain))
        .unwrap();
    // A minute between keep-alives: only the announcements of changes can arrive in time.
    let fabric = announcer(&domain, "gate", "g1", Duration::from_secs(60));
    let first = wait_for(&events, "the first keep-alive", appeared).into_info();
    assert_eq!(first.methods, Some(vec![]), "nothing served yet");

    let server = GateServer::new(Open).workers(2).serve(&fabric).unwrap();
    let serving = wait_for(
        &events,
        "the server's start",
        |e| matches!(e, ServiceEvent::Updated(i) if i.workers == Some(2)),
    );
    let methods = serving.info().methods.clone().unwrap();
    assert!(methods.contains(&"pass".to_owned()), "{methods:?}");

    server.close().unwrap();
    let stopped = wait_for(
        &events,
        "the server's stop",
        |e| matches!(e, ServiceEvent::Updated(i) if i.workers == Some(0)),
    );
    assert_eq!(stopped.info().methods, Some(vec![]));
}

/// A queue bound to the discovery exchange as amqp-fabric's listener binds it, and one bound to
/// goodbyes, on a raw connection: what a Python listener hears, and when the goodbye is in.
#[test]
fn a_python_listener_hears_beats_only_not_server_changes_or_goodbyes() {
    use amiquip::{Connection, FieldTable, QueueDeclareOptions};

    let domain = support::unique_domain("reg-py-binding");
    let mut raw = Connection::insecure_open(&support::broker_url()).unwrap();
    let channel = raw.open_channel(None).unwrap();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let bind = |msg_type: &str| {
        let queue = channel.queue_declare("", exclusive.clone()).unwrap();
        let mut arguments = FieldTable::default();
        for (key, value) in [
            ("x-match", "all"),
            ("msg_type", msg_type),
            ("service_domain", domain.as_str()),
        ] {
            arguments.insert(
                key.to_owned(),
                amiquip::AmqpValue::LongString(value.to_owned()),
            );
        }
        channel
            .queue_bind(queue.name(), "msc.discovery", "", arguments)
            .unwrap();
        queue
    };
    let beats = bind("keep_alive");
    let goodbyes = bind("goodbye");

    // A minute between beats: the first, at connect, is the only one in this test.
    let fabric = announcer(&domain, "gate", "g1", Duration::from_secs(60));
    let server = GateServer::new(Open).workers(1).serve(&fabric).unwrap();
    server.close().unwrap();
    fabric.close().unwrap();

    // The goodbye is published after the updates, on the same channel: once it has come,
    // the updates have been routed too.
    let consumer = goodbyes
        .consume(amiquip::ConsumerOptions {
            no_ack: true,
            ..amiquip::ConsumerOptions::default()
        })
        .unwrap();
    let goodbye = consumer.receiver().recv_timeout(WAIT);
    assert!(
        matches!(goodbye, Ok(amiquip::ConsumerMessage::Delivery(_))),
        "no goodbye came: {goodbye:?}"
    );
    let heard = channel
        .queue_declare_passive(beats.name())
        .unwrap()
        .declared_message_count();
    assert_eq!(
        heard,
        Some(1),
        "a Python listener heard more than the first beat"
    );
    let _ = raw.close();
}

#[test]
fn a_discovery_exchange_that_cannot_be_declared_fails_the_connect() {
    // The broker reserves `amq.*` names: the declaration is refused, and the connect says so.
    let config = config("t-reg-refused", "svc", "s1")
        .keep_alive(BEAT)
        .discovery_exchange("amq.direct");
    match Fabric::connect(config) {
        Err(Error::Broker { operation, .. }) => {
            assert!(operation.contains("amq.direct"), "{operation}")
        }
        other => panic!("expected the broker to refuse the exchange, got {other:?}"),
    }
}

/// The process id of the connection that consumes `queue`, as `rabbitmqctl close_connection`
/// takes it.
fn connection_consuming(queue: &str) -> String {
    let field = |output: &str, key: &str, column: usize| -> Option<String> {
        output
            .lines()
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&key))
            .and_then(|fields| fields.get(column).map(|f| f.to_string()))
    };
    let consumers = support::rabbitmqctl(&[
        "list_consumers",
        "-q",
        "--no-table-headers",
        "queue_name",
        "channel_pid",
    ]);
    let channel = field(&consumers, queue, 1)
        .unwrap_or_else(|| panic!("nobody consumes {queue}: {consumers}"));
    let channels = support::rabbitmqctl(&[
        "list_channels",
        "-q",
        "--no-table-headers",
        "pid",
        "connection",
    ]);
    field(&channels, &channel, 1).unwrap_or_else(|| panic!("no channel {channel}: {channels}"))
}

/// Holds `fabric`'s reconnection: its link thread waits inside the first "reconnecting"
/// notification until the returned sender is used or dropped. Lets a test keep a
/// participant away while the broker stays up, as a crashed process would be.
fn hold_reconnection(fabric: &Fabric) -> mpsc::Sender<()> {
    let (open, opened) = mpsc::channel::<()>();
    let opened = Mutex::new(Some(opened));
    fabric.on_connection_change(move |state| {
        if let ConnectionState::Reconnecting { .. } = state {
            let first = opened.lock().unwrap().take();
            if let Some(opened) = first {
                // A watchdog, not a delay: the test lets go long before.
                let _ = opened.recv_timeout(Duration::from_secs(120));
            }
        }
    });
    open
}

#[test]
fn a_participant_whose_connection_dies_says_no_goodbye_goes_silent_and_returns() {
    let domain = support::unique_domain("reg-crash");
    let ttl = Duration::from_secs(1);
    let watcher = listener(&domain, ttl);
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain))
        .unwrap();
    let doomed = announcer(&domain, "gate", "g1", BEAT);
    let _server = GateServer::new(Open).workers(1).serve(&doomed).unwrap();
    let first = wait_for(&events, "the first keep-alive", appeared);

    // As a crash looks to the others: the broker drops the connection, nobody says goodbye,
    // and (held here) the participant does not come back at once.
    let release = hold_reconnection(&doomed);
    let connection = connection_consuming(&doomed.address().method_queue("health_check"));
    support::rabbitmqctl(&["close_connection", &connection, "registry test: a crash"]);
    let gone = wait_for(&events, "an end", |e| {
        matches!(e, ServiceEvent::Silent(_) | ServiceEvent::Left(_))
    });
    assert!(matches!(gone, ServiceEvent::Silent(_)), "{gone:#?}");
    assert!(gone.info().last_heard.elapsed() >= ttl);

    // Let go, it reconnects and its keep-alive thread announces it again.
    drop(release);
    let back = wait_for(&events, "the keep-alive after the reconnection", appeared);
    assert_eq!(back.info().instance, first.info().instance);
}

#[test]
fn a_fabric_that_closes_or_is_dropped_says_goodbye_at_once() {
    let domain = support::unique_domain("reg-bye");
    // A TTL far beyond the waits: only a goodbye can end these participants in time.
    let ttl = Duration::from_secs(60);
    let watcher = listener(&domain, ttl);
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain))
        .unwrap();
    let left = |e: &ServiceEvent| matches!(e, ServiceEvent::Left(_));

    let closed = announcer(&domain, "svc", "closed", BEAT);
    wait_for(&events, "the first keep-alive", appeared);
    let closing = Instant::now();
    closed.close().unwrap();
    let bye = wait_for(&events, "a goodbye", left);
    assert_eq!(bye.info().address, *closed.address());
    assert!(closing.elapsed() < WAIT && WAIT < ttl);

    let dropped = announcer(&domain, "svc", "dropped", BEAT);
    let address = dropped.address().clone();
    let server = GateServer::new(Open).workers(1).serve(&dropped).unwrap();
    wait_for(&events, "the first keep-alive", appeared);
    // The server holds a clone: the connection closes, with a goodbye, when both are gone.
    drop(dropped);
    drop(server);
    let bye = wait_for(&events, "a goodbye", left);
    assert_eq!(bye.info().address, address);
    assert!(watcher
        .list_services(&ServiceFilter::any().domain(&domain))
        .unwrap()
        .is_empty());
}

#[test]
fn filters_match_domain_type_and_id_exactly() {
    let domain = support::unique_domain("reg-filter");
    // Starts with `domain`: amqp-fabric's prefix match would wrongly take it for one of it.
    let other = format!("{domain}-more");
    let watcher = listener(&domain, Duration::from_secs(5));
    let all = watcher.service_events(&ServiceFilter::any()).unwrap();
    let by_id = watcher
        .service_events(&ServiceFilter::any().domain(&domain).service_id("2"))
        .unwrap();

    let names = [
        (domain.as_str(), "a", "1"),
        (domain.as_str(), "a", "2"),
        (domain.as_str(), "b", "1"),
        (domain.as_str(), "ab", "3"),
        (other.as_str(), "a", "1"),
    ];
    let _participants: Vec<Fabric> = names
        .iter()
        .map(|(d, t, i)| announcer(d, t, i, BEAT))
        .collect();
    let mut pending: Vec<String> = names
        .iter()
        .map(|(d, t, i)| format!("{d}.{t}.{i}"))
        .collect();
    while !pending.is_empty() {
        let event = wait_for(&all, "every participant", appeared);
        pending.retain(|fqn| *fqn != event.info().address.fqn());
    }

    // Events reach every watch at once: the id watch has all it will get of these.
    let mut by_id_events = Vec::new();
    while let Some(event) = by_id.try_recv().unwrap() {
        by_id_events.push(event.info().address.fqn());
    }
    assert_eq!(by_id_events, [format!("{domain}.a.2")]);

    let list = |filter: ServiceFilter| -> Vec<String> {
        let mut found = fqns(&watcher.list_services(&filter).unwrap());
        // Others' participants may match filters without a domain; only ours count here.
        found.retain(|fqn| fqn.starts_with(&domain));
        found
    };
    let ours = |suffixes: &[&str]| -> Vec<String> {
        suffixes.iter().map(|s| format!("{domain}{s}")).collect()
    };
    let in_domain = ServiceFilter::any().domain(&domain);
    assert_eq!(
        list(in_domain.clone()),
        ours(&[".a.1", ".a.2", ".ab.3", ".b.1"])
    );
    assert_eq!(
        list(in_domain.clone().service_type("a")),
        ours(&[".a.1", ".a.2"])
    );
    assert_eq!(list(in_domain.clone().service_type("b")), ours(&[".b.1"]));
    assert_eq!(
        list(in_domain.clone().service_id("1")),
        ours(&[".a.1", ".b.1"])
    );
    assert_eq!(
        list(in_domain.clone().service_type("a").service_id("2")),
        ours(&[".a.2"])
    );
    assert_eq!(
        list(in_domain.clone().service_type("a").service_id("3")),
        ours(&[])
    );
    assert_eq!(list(in_domain.clone().service_type("c")), ours(&[]));
    assert_eq!(
        list(ServiceFilter::any().domain(&other)),
        ours(&["-more.a.1"])
    );
    let prefix = &domain[..domain.len() - 1];
    assert_eq!(list(ServiceFilter::any().domain(prefix)), ours(&[]));
    assert_eq!(
        list(ServiceFilter::any().service_type("a").service_id("1")),
        ours(&["-more.a.1", ".a.1"])
    );
    assert_eq!(list(ServiceFilter::any()).len(), 5);
}

#[test]
fn a_callback_watch_sees_events_and_ends_when_dropped() {
    let domain = support::unique_domain("reg-callback");
    let watcher = listener(&domain, Duration::from_secs(5));
    let (seen_tx, seen) = mpsc::channel();
    let watch = watcher
        .watch_services(&ServiceFilter::any().domain(&domain), move |event| {
            let _ = seen_tx.send(event);
        })
        .unwrap();
    let svc = announcer(&domain, "svc", "s1", BEAT);
    let event = seen.recv_timeout(WAIT).expect("no event within the wait");
    assert!(
        matches!(&event, ServiceEvent::Appeared(i) if i.address == *svc.address()),
        "{event:#?}"
    );

    // Dropping the watcher ends its thread, which drops the callback and its sender.
    drop(watch);
    loop {
        match seen.recv_timeout(WAIT) {
            Ok(_) => continue, // sent before the drop
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the watch still runs after its drop"),
        }
    }
}

#[test]
fn listing_needs_listening_and_an_open_fabric() {
    let domain = support::unique_domain("reg-off");
    let deaf = announcer(&domain, "svc", "s1", BEAT);
    assert_eq!(
        deaf.list_services(&ServiceFilter::any()),
        Err(Error::NotListening)
    );
    assert!(matches!(
        deaf.service_events(&ServiceFilter::any()),
        Err(Error::NotListening)
    ));
    assert!(matches!(
        deaf.watch_services(&ServiceFilter::any(), |_| {}),
        Err(Error::NotListening)
    ));
    assert!(Error::NotListening
        .to_string()
        .contains("keep_alive_listen"));

    let watcher = listener(&domain, Duration::from_secs(5));
    let events = watcher.service_events(&ServiceFilter::any()).unwrap();
    watcher.close().unwrap();
    assert_eq!(
        watcher.list_services(&ServiceFilter::any()),
        Err(Error::Closed)
    );
    // The watch ends once it has given out what was queued.
    let deadline = Instant::now() + WAIT;
    loop {
        match events.recv_timeout(WAIT) {
            Err(Error::Closed) => break,
            Ok(Some(_)) if Instant::now() < deadline => continue,
            other => panic!("the watch should end with the fabric: {other:?}"),
        }
    }
}

// ---- Python (amqp-fabric) peers ----

#[test]
fn a_python_participant_is_listed_and_goes_silent_when_it_stops() {
    let domain = support::unique_domain("reg-py-announcer");
    let ttl = Duration::from_secs(3);
    let watcher = listener(&domain, ttl);
    let events = watcher
        .service_events(&ServiceFilter::any().domain(&domain))
        .unwrap();
    let python = Peer::spawn("registry_announcer.py", &[&domain, "py_svc", "p1"]);
    assert_eq!(python.next_line(), "ready");

    let info = wait_for(&events, "the Python keep-alive", appeared).into_info();
    assert_eq!(info.address.fqn(), format!("{domain}.py_svc.p1"));
    // An empty body: the address is all there is to know.
    assert_eq!(info.raw, Value::Null);
    assert_eq!((info.instance, info.version, info.pid), (None, None, None));
    assert_eq!(
        (info.methods, info.in_flight, info.workers),
        (None, None, None)
    );
    let listed = watcher
        .list_services(&ServiceFilter::any().domain(&domain).service_id("p1"))
        .unwrap();
    assert_eq!(fqns(&listed), [format!("{domain}.py_svc.p1")]);

    python.finish();
    let gone = wait_for(&events, "an end", |e| {
        matches!(e, ServiceEvent::Silent(_) | ServiceEvent::Left(_))
    });
    assert!(
        matches!(gone, ServiceEvent::Silent(_)),
        "Python sends no goodbye: {gone:#?}"
    );
}

#[test]
fn python_lists_a_rust_participant_and_reads_its_keep_alive() {
    let domain = support::unique_domain("reg-py-lister");
    let rust = connect(
        config(&domain, "calc", "rs1")
            .keep_alive(BEAT)
            .version("2.0.0"),
    );
    let _server = GateServer::new(Open).workers(3).serve(&rust).unwrap();
    let _other = announcer(&domain, "other", "o1", BEAT);

    let python = Peer::spawn("registry_lister.py", &[&domain, "calc", "rs1"]);
    let line = python.next_line();
    python.finish();
    let seen: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(
        seen.get("error").is_none(),
        "Python never listed us: {seen}"
    );

    let rust_entry = serde_json::json!({"domain": domain, "type": "calc", "id": "rs1"});
    assert_eq!(
        seen["by_type"],
        Value::Array(vec![rust_entry.clone()]),
        "{seen}"
    );
    let by_domain = seen["by_domain"].as_array().unwrap();
    assert!(by_domain.contains(&rust_entry), "{seen}");
    // What amqp-fabric kept of our body is the JSON we sent.
    let body = &seen["body"];
    assert_eq!(body["version"], "2.0.0", "{seen}");
    // The version is in a header too, for Python callbacks, which see only the headers.
    assert_eq!(seen["headers"]["service_version"], "2.0.0", "{seen}");
    assert_eq!(body["pid"], std::process::id(), "{seen}");
    assert_eq!(body["workers"], 3, "{seen}");
    let methods: Vec<&str> = body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        methods.contains(&"pass") && methods.contains(&"health_check"),
        "{seen}"
    );
    // The contract rides along in the body; amqp-fabric listed us all the same.
    assert_eq!(
        body["contract"]["methods"][0]["params"][0],
        serde_json::json!({"name": "x", "type": "i64"}),
        "{seen}"
    );
    assert_eq!(
        body["contract_hash"],
        GateClient::contract().hash().to_string(),
        "{seen}"
    );
}

/// The same service as `Gate`, written with another parameter name.
#[allow(dead_code)]
mod renamed {
    #[fabric_core::fabric_service]
    pub trait Gate {
        fn pass(&self, y: i64) -> i64;
    }
}

#[test]
fn a_client_checks_the_announced_contract_at_connect_time() {
    let domain = support::unique_domain("reg-contract");
    let rust = connect(config(&domain, "calc", "rs1").keep_alive(BEAT));
    let _server = GateServer::new(Open).serve(&rust).unwrap();
    let python = Peer::spawn("registry_announcer.py", &[&domain, "py_svc", "p1"]);
    assert_eq!(python.next_line(), "ready");
    let client = connect(
        config(&domain, "client", "c1")
            .keep_alive_listen(true)
            .discovery_ttl(Duration::from_secs(3)),
    );

    let checked = GateClient::connect_checked(&client, &domain, "calc", "rs1").unwrap();
    assert_eq!(checked.pass(4).unwrap(), 4);
    let info = client
        .check_contract(
            &fabric_core::ServiceAddress::new(&domain, "calc", "rs1").unwrap(),
            &GateClient::contract(),
        )
        .unwrap();
    assert_eq!(info.contract(), Some(&GateClient::contract()));
    assert_eq!(info.contract_hash(), Some(GateClient::contract().hash()));

    let error = renamed::GateClient::connect_checked(&client, &domain, "calc", "rs1").unwrap_err();
    assert_eq!(
        error,
        Error::ContractMismatch {
            service: format!("{domain}.calc.rs1"),
            difference: "method `pass` takes (x: i64) there, (y: i64) here".to_owned(),
        }
    );
    assert!(
        error.to_string().contains("(x: i64) there, (y: i64) here"),
        "{error}"
    );

    let error = GateClient::connect_checked(&client, &domain, "py_svc", "p1").unwrap_err();
    assert!(
        matches!(&error, Error::ContractMismatch { difference, .. } if difference.contains("no contract")),
        "{error:?}"
    );
    let listed = client
        .list_services(&ServiceFilter::any().domain(&domain).service_type("py_svc"))
        .unwrap();
    assert_eq!(listed[0].contract(), None, "a Python peer announces none");

    let error = GateClient::connect_checked(&client, &domain, "calc", "nobody").unwrap_err();
    assert!(matches!(error, Error::NoSuchService { .. }), "{error:?}");
    python.finish();
}
