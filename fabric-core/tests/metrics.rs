//! The `metrics` feature against a real RabbitMQ: a known run of calls and publishes, then
//! every number read back from the facade's debugging recorder, per label set, on both sides.
//!
//! The recorder is global to the process, so this binary holds one test.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, Codec, Error, Headers};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused(String);

#[fabric_service]
pub trait Abacus {
    fn add(&self, a: i64, b: i64) -> i64;
    fn check(&self, x: i64) -> Result<i64, Refused>;
    fn explode(&self) -> u32;
}

struct Beads;

impl Abacus for Beads {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    fn check(&self, x: i64) -> Result<i64, Refused> {
        if x < 0 {
            Err(Refused(format!("{x} is negative")))
        } else {
            Ok(x)
        }
    }
    fn explode(&self) -> u32 {
        panic!("the beads scatter")
    }
}

/// Arguments `add` cannot take: the server refuses them before running it.
#[derive(Serialize)]
struct Wrong {
    nonsense: bool,
}

/// A metric: its name and its labels as `key=value`, sorted.
type Id = (String, Vec<String>);

/// Everything recorded so far. The debugging recorder hands out what was recorded since the
/// last snapshot (counters and gauges reset to 0, histograms emptied), so snapshots are added
/// up here.
#[derive(Default)]
struct Totals {
    counters: BTreeMap<Id, u64>,
    gauges: BTreeMap<Id, f64>,
    histograms: BTreeMap<Id, Vec<f64>>,
    units: BTreeMap<String, Unit>,
}

impl Totals {
    fn update(&mut self, snapshotter: &Snapshotter) {
        for (key, unit, _description, value) in snapshotter.snapshot().into_vec() {
            let kind = key.kind();
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let id = (key.name().to_owned(), labels);
            if let Some(unit) = unit {
                self.units.insert(id.0.clone(), unit);
            }
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *self.counters.entry(id).or_default() += n
                }
                (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                    *self.gauges.entry(id).or_default() += v.into_inner()
                }
                (MetricKind::Histogram, DebugValue::Histogram(values)) => self
                    .histograms
                    .entry(id)
                    .or_default()
                    .extend(values.into_iter().map(|v| v.into_inner())),
                (kind, value) => panic!("a {kind:?} with the value {value:?}"),
            }
        }
    }

    fn counter(&self, name: &str, labels: &[&str]) -> u64 {
        self.counters.get(&id(name, labels)).copied().unwrap_or(0)
    }

    fn histogram_count(&self, name: &str, labels: &[&str]) -> usize {
        self.histograms.get(&id(name, labels)).map_or(0, Vec::len)
    }

    /// The counters named `name`: labels → value.
    fn counters_named(&self, name: &str) -> BTreeMap<Vec<String>, u64> {
        self.counters
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), value)| (labels.clone(), *value))
            .collect()
    }
}

fn id(name: &str, labels: &[&str]) -> Id {
    let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
    labels.sort();
    (name.to_owned(), labels)
}

fn labels(pairs: &[&str]) -> Vec<String> {
    id("", pairs).1
}

#[test]
fn a_known_run_reads_back_exactly() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder in this test binary");
    let mut totals = Totals::default();

    let domain = support::unique_domain("metrics");
    let _cleanup = Cleanup(domain.clone());
    let server_fabric = support::connect(&domain, "abacus", "a1");
    let server = AbacusServer::new(Beads)
        .workers(2)
        .serve(&server_fabric)
        .unwrap();
    let fabric = support::connect(&domain, "counter", "c1");
    let client = AbacusClient::connect(&fabric, &domain, "abacus", "a1").unwrap();
    let service = format!("service={domain}.abacus.a1");
    let service = service.as_str();

    // 5 ok, 2 of the method's own errors, 1 panic, 1 unknown method, 1 refused argument.
    for i in 0..5 {
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
    }
    for x in [-1, -2] {
        assert!(client.check(x).unwrap().is_err());
    }
    let err = client.explode().unwrap_err();
    assert!(matches!(&err, Error::Remote { .. }), "{err:?}");
    let err = client
        .rpc()
        .call::<_, String>("no_such_method", &())
        .unwrap_err();
    assert!(matches!(&err, Error::UnknownMethod { .. }), "{err:?}");
    let err = client
        .rpc()
        .with_codec(Codec::Json)
        .call::<_, i64>("add", &Wrong { nonsense: true })
        .unwrap_err();
    assert!(matches!(&err, Error::BadArguments { .. }), "{err:?}");
    // Sent, then dropped unread: abandoned on the client, still answered by the server.
    let abandoned = client
        .rpc()
        .start_call::<_, i64>("add", &AbacusAddArgs { a: 1, b: 2 })
        .unwrap();
    drop(abandoned);

    // 10 data messages and 3 events, each confirmed before the next.
    for i in 0..10u8 {
        fabric
            .publish_data(&[i], &Headers::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    for i in 0..3 {
        fabric
            .publish_event("metrics.tick", &i)
            .unwrap()
            .wait()
            .unwrap();
    }

    // Every answered call was recorded by the server before its reply left, but the abandoned
    // one may still be running: wait (bounded) until the server has finished 6 `add`s.
    let server_adds = ["method=add", "outcome=ok", service];
    wait_for(
        &mut totals,
        &snapshotter,
        "6 `add` calls finished by the server",
        |t| t.counter("fabric_server_calls_finished_total", &server_adds) >= 6,
    );
    server.close().unwrap();
    totals.update(&snapshotter);

    // The client: what was started, and how each call ended.
    assert_eq!(
        totals.counters_named("fabric_client_calls_started_total"),
        BTreeMap::from([
            (labels(&["method=add", service]), 7),
            (labels(&["method=check", service]), 2),
            (labels(&["method=explode", service]), 1),
            (labels(&["method=no_such_method", service]), 1),
        ])
    );
    let client_finished = BTreeMap::from([
        (labels(&["method=add", "outcome=ok", service]), 5),
        (labels(&["method=add", "outcome=bad_arguments", service]), 1),
        (labels(&["method=add", "outcome=abandoned", service]), 1),
        (labels(&["method=check", "outcome=error", service]), 2),
        (labels(&["method=explode", "outcome=remote", service]), 1),
        (
            labels(&["method=no_such_method", "outcome=unknown_method", service]),
            1,
        ),
    ]);
    assert_eq!(
        totals.counters_named("fabric_client_calls_finished_total"),
        client_finished
    );

    // The server: the unknown method never reached it; the abandoned call ran.
    assert_eq!(
        totals.counters_named("fabric_server_calls_started_total"),
        BTreeMap::from([
            (labels(&["method=add", service]), 7),
            (labels(&["method=check", service]), 2),
            (labels(&["method=explode", service]), 1),
        ])
    );
    let server_finished = BTreeMap::from([
        (labels(&["method=add", "outcome=ok", service]), 6),
        (labels(&["method=add", "outcome=bad_arguments", service]), 1),
        (labels(&["method=check", "outcome=error", service]), 2),
        (labels(&["method=explode", "outcome=panic", service]), 1),
    ]);
    assert_eq!(
        totals.counters_named("fabric_server_calls_finished_total"),
        server_finished
    );

    // One duration per finished call, with the same labels; all of them plausible.
    for (side, finished) in [("client", &client_finished), ("server", &server_finished)] {
        let name = format!("fabric_{side}_call_duration_seconds");
        for (labels, count) in finished {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            assert_eq!(
                totals.histogram_count(&name, &labels) as u64,
                *count,
                "{name} {labels:?}"
            );
        }
        let all: usize = totals
            .histograms
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, values)| values.len())
            .sum();
        assert_eq!(all as u64, finished.values().sum::<u64>(), "{name}");
        for ((n, labels), values) in &totals.histograms {
            for v in values {
                assert!((0.0..30.0).contains(v), "{n} {labels:?}: {v}");
            }
        }
        assert_eq!(totals.units.get(&name), Some(&Unit::Seconds), "{name}");
    }

    // Nothing left in flight, on either side, for any method.
    let in_flight: Vec<_> = totals
        .gauges
        .iter()
        .filter(|((name, _), _)| name.ends_with("_calls_in_flight"))
        .collect();
    assert_eq!(in_flight.len(), 4 + 3, "{in_flight:?}");
    for ((name, labels), value) in in_flight {
        assert_eq!(*value, 0.0, "{name} {labels:?}");
    }

    // Publishes and their confirms.
    assert_eq!(
        totals.counters_named("fabric_messages_published_total"),
        BTreeMap::from([(labels(&["kind=data"]), 10), (labels(&["kind=event"]), 3)])
    );
    assert_eq!(
        totals.counters_named("fabric_publish_confirms_total"),
        BTreeMap::from([(labels(&["outcome=ack"]), 13)])
    );
    assert_eq!(
        totals.units.get("fabric_publish_confirms_total"),
        Some(&Unit::Count)
    );

    // Nothing was lost: no reconnection yet, no dropped log record.
    assert_eq!(totals.counter("fabric_reconnections_total", &[]), 0);
    assert_eq!(totals.counter("fabric_log_records_dropped_total", &[]), 0);

    // The broker closes the client's connection: fabric makes a new one, and counts it
    // before it says it is connected again.
    let (reconnected_tx, reconnected) = std::sync::mpsc::channel();
    fabric.on_connection_change(move |state| {
        if let fabric_core::ConnectionState::Connected { generation, .. } = state {
            if *generation > 1 {
                let _ = reconnected_tx.send(());
            }
        }
    });
    let connection = support::connection_of(&fabric.address().fqn());
    support::rabbitmqctl(&["close_connection", &connection, "metrics test: reconnect"]);
    reconnected
        .recv_timeout(Duration::from_secs(30))
        .expect("fabric did not reconnect within 30 s");
    totals.update(&snapshotter);
    assert_eq!(totals.counter("fabric_reconnections_total", &[]), 1);

    fabric.close().unwrap();
    server_fabric.close().unwrap();
}

/// Adds up snapshots until `done` holds of the totals, for at most 30 s: for what is recorded
/// after the event the test can wait on.
fn wait_for(
    totals: &mut Totals,
    snapshotter: &Snapshotter,
    what: &str,
    done: impl Fn(&Totals) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        totals.update(snapshotter);
        if done(totals) {
            return;
        }
        assert!(Instant::now() < deadline, "no {what} within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Deletes the domain's data and events exchanges (publishing declared them, and they outlive
/// their publishers) when the test ends, passed or failed.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(mut connection) = amiquip::Connection::insecure_open(&support::broker_url()) else {
            return;
        };
        if let Ok(channel) = connection.open_channel(None) {
            for kind in ["data", "events"] {
                let _ = channel.exchange_delete(format!("{}.{kind}", self.0), false);
            }
        }
        let _ = connection.close();
    }
}
