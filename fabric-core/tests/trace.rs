//! Trace context and deadlines in one process, against the broker: what a handler sees of its
//! caller, what it sends on (events, data, nested calls), and calls that come too late.
//! The chain across processes is `examples/tests/trace_chain.rs`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fabric_core::{fabric_service, CallContext, Error, Fabric, Headers, Message};
use serde::{Deserialize, Serialize};

/// What a handler saw of its call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seen {
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    /// Milliseconds left until the deadline.
    left_ms: Option<u64>,
}

/// Handed to `block`: it says it started, then waits for the release.
type Gate = Arc<Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>>;
/// How a nested call went: its error kind, if any, and how long it took in milliseconds.
type Nested = (Option<String>, u64);

#[fabric_service]
pub trait Probe {
    /// What the handler sees: trace id, span id, parent span id, milliseconds left.
    fn seen(&self) -> Seen;
    /// Publishes an event and a data message, and calls `seen` on the probe `id`; answers
    /// its own trace id and span id and what the nested call saw.
    fn fan_out(&self, id: String) -> (String, String, Seen);
    /// Waits until the test lets it go.
    fn block(&self) -> u32;
    /// Counts runs.
    fn count(&self) -> u32;
    /// Sleeps `ms`, then calls `seen` on the probe `id`, and tells the test how that went: the
    /// nested call's error kind, if any, and how long it took, in milliseconds.
    fn late_call(&self, ms: u64, id: String);
}

struct Prober {
    fabric: Fabric,
    domain: String,
    runs: Arc<AtomicUsize>,
    /// Handed to `block`: it says it started, then waits for the release.
    gate: Gate,
    /// Where `late_call` tells how its nested call went.
    nested: mpsc::Sender<Nested>,
}

impl Probe for Prober {
    fn seen(&self) -> Seen {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let call = CallContext::current().unwrap();
        Seen {
            trace_id: call.trace_id().to_owned(),
            span_id: call.span_id().to_owned(),
            parent_span_id: call.parent_span_id().map(str::to_owned),
            left_ms: call.remaining().map(|left| left.as_millis() as u64),
        }
    }

    fn fan_out(&self, id: String) -> (String, String, Seen) {
        let call = CallContext::current().unwrap();
        self.fabric
            .publish_event("probe.fanned", &1u32)
            .unwrap()
            .wait()
            .unwrap();
        self.fabric
            .publish_data(b"x", &Headers::new().with("kind", "probe"))
            .unwrap()
            .wait()
            .unwrap();
        let nested = ProbeClient::connect(&self.fabric, &self.domain, "probe", &id)
            .unwrap()
            .seen()
            .unwrap();
        (
            call.trace_id().to_owned(),
            call.span_id().to_owned(),
            nested,
        )
    }

    fn block(&self) -> u32 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let (started, release) = self.gate.lock().unwrap().take().expect("one block call");
        started.send(()).unwrap();
        release.recv_timeout(Duration::from_secs(30)).unwrap();
        0
    }

    fn count(&self) -> u32 {
        self.runs.fetch_add(1, Ordering::SeqCst) as u32
    }

    fn late_call(&self, ms: u64, id: String) {
        std::thread::sleep(Duration::from_millis(ms));
        let client = ProbeClient::connect(&self.fabric, &self.domain, "probe", &id).unwrap();
        let started = Instant::now();
        let outcome = client.seen();
        let took = started.elapsed().as_millis() as u64;
        let _ = self
            .nested
            .send((outcome.err().map(|e| e.kind().to_owned()), took));
    }
}

/// A probe service's fabric and what its handlers share with the test.
struct Probes {
    fabric: Fabric,
    domain: String,
    runs: Arc<AtomicUsize>,
    gate: Gate,
    nested: (mpsc::Sender<Nested>, mpsc::Receiver<Nested>),
}

impl Probes {
    fn new(test: &str) -> Probes {
        let domain = support::unique_domain(test);
        Probes::in_domain(domain, "p1")
    }

    fn in_domain(domain: String, id: &str) -> Probes {
        Probes {
            fabric: support::connect(&domain, "probe", id),
            domain,
            runs: Arc::default(),
            gate: Arc::default(),
            nested: mpsc::channel(),
        }
    }

    fn prober(&self) -> Prober {
        Prober {
            fabric: self.fabric.clone(),
            domain: self.domain.clone(),
            runs: Arc::clone(&self.runs),
            gate: Arc::clone(&self.gate),
            nested: self.nested.0.clone(),
        }
    }

    fn client(&self, id: &str) -> ProbeClient {
        ProbeClient::connect(&self.fabric, &self.domain, "probe", id).unwrap()
    }
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn a_handler_sees_a_trace_and_the_deadline_its_caller_set() {
    let probes = Probes::new("trace-seen");
    let _server = ProbeServer::new(probes.prober())
        .serve(&probes.fabric)
        .unwrap();
    let client = probes.client("p1").with_timeout(Duration::from_secs(5));

    let Seen {
        trace_id,
        span_id,
        parent_span_id: parent,
        left_ms: left,
    } = client.seen().unwrap();
    assert!(is_hex(&trace_id, 32), "{trace_id}");
    assert!(is_hex(&span_id, 16), "{span_id}");
    let parent = parent.expect("a fabric caller names its span");
    assert!(is_hex(&parent, 16), "{parent}");
    assert_ne!(parent, span_id);
    let left = left.expect("a fabric caller sends its deadline");
    assert!(left <= 5_000 && left > 3_000, "{left} ms left of 5 s");
    // Each call outside a handler starts a trace of its own.
    assert_ne!(client.seen().unwrap().trace_id, trace_id);
    // Outside a handler there is no current call.
    assert!(CallContext::current().is_none());
}

#[test]
fn events_data_and_nested_calls_from_a_handler_continue_its_trace() {
    let probes = Probes::new("trace-fan");
    let _server = ProbeServer::new(probes.prober())
        .workers(2)
        .serve(&probes.fabric)
        .unwrap();
    let (events_tx, events) = mpsc::channel::<Message>();
    let _events = probes
        .fabric
        .subscribe_events("probe_events", "probe.#", move |message: Message| {
            let _ = events_tx.send(message);
        })
        .unwrap();
    let data = probes
        .fabric
        .data_subscriber("probe_data")
        .header("kind", "probe")
        .inbox()
        .unwrap();

    let (trace_id, span_id, nested) = probes.client("p1").fan_out("p1".to_owned()).unwrap();
    // The nested call: the same trace, the handler's span as parent.
    assert_eq!(nested.trace_id, trace_id);
    assert_eq!(nested.parent_span_id.as_deref(), Some(span_id.as_str()));
    assert_ne!(nested.span_id, span_id);
    // The event and the data message: sent from the handler's span.
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    let event = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(event.trace_id(), Some(trace_id.as_str()));
    assert_eq!(
        event.headers().get_str("traceparent"),
        Some(traceparent.as_str())
    );
    let message = data.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(message.trace_id(), Some(trace_id.as_str()));
    assert_eq!(
        message.headers().get_str("traceparent"),
        Some(traceparent.as_str())
    );
}

#[test]
fn a_call_held_past_its_deadline_is_not_run() {
    let probes = Probes::new("trace-late");
    // One worker that takes up to 8 calls at once: the calls behind a blocked one wait in
    // the worker's own hands, where the broker's `expiration` no longer reaches them.
    let _server = ProbeServer::new(probes.prober())
        .workers(1)
        .prefetch(8)
        .serve(&probes.fabric)
        .unwrap();
    let client = probes.client("p1");
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    *probes.gate.lock().unwrap() = Some((started_tx, release_rx));

    let blocked = client
        .with_timeout(Duration::from_secs(30))
        .rpc()
        .start_call::<_, u32>("block", &ProbeBlockArgs {})
        .unwrap();
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    let short = client.with_timeout(Duration::from_millis(300));
    let late: Vec<_> = (0..3)
        .map(|_| {
            short
                .rpc()
                .start_call::<_, u32>("count", &ProbeCountArgs {})
                .unwrap()
        })
        .collect();
    for call in late {
        assert!(matches!(call.wait(), Err(Error::Timeout { .. })));
    }
    release.send(()).unwrap();
    assert_eq!(blocked.wait().unwrap(), 0);
    // The worker takes calls in order: once this one is answered, the late ones were seen.
    let runs_before = client.count().unwrap();
    assert_eq!(runs_before, 1, "only the blocked call ran before this one");
    assert_eq!(probes.runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_nested_call_after_the_handlers_deadline_fails_at_once_and_is_not_sent() {
    let probes = Probes::new("trace-nested-late");
    let _server = ProbeServer::new(probes.prober())
        .workers(2)
        .serve(&probes.fabric)
        .unwrap();
    let witness = Probes::in_domain(probes.domain.clone(), "p2");
    let _witness = ProbeServer::new(witness.prober())
        .serve(&witness.fabric)
        .unwrap();
    let (nested, witness_runs) = (&probes.nested.1, &witness.runs);

    // With time to spare the nested call goes through.
    let roomy = probes.client("p1").with_timeout(Duration::from_secs(10));
    roomy.late_call(0, "p2".to_owned()).unwrap();
    let (error, _) = nested.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(error, None);
    assert_eq!(witness_runs.load(Ordering::SeqCst), 1);

    // The caller gives up after 300 ms; the handler sleeps 600 ms, then calls p2: the nested
    // call fails at once, without reaching the broker, and p2 never runs it.
    let tight = probes.client("p1").with_timeout(Duration::from_millis(300));
    let outcome = tight.late_call(600, "p2".to_owned());
    assert!(matches!(outcome, Err(Error::Timeout { .. })), "{outcome:?}");
    let (error, took) = nested.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(error.as_deref(), Some("deadline_exceeded"));
    assert!(
        took < 100,
        "failing took {took} ms: it waited for something"
    );
    // p2 answers the next call it gets; had the late one been sent, it would have come first.
    roomy.late_call(0, "p2".to_owned()).unwrap();
    assert_eq!(
        nested.recv_timeout(Duration::from_secs(10)).unwrap().0,
        None
    );
    assert_eq!(witness_runs.load(Ordering::SeqCst), 2);
}
