//! One request across three processes, A → B → C (the `trace_hop` example): one trace, the
//! span parents in order, a deadline that shrinks at each hop, log records that join the
//! trace, and a hop that is never run when its caller has already given up.

mod common;

use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{connect, start_serving};
use fabric_core::{Error, LogFilter, LogLevel, LogRecord};
use fabric_examples::HopClient;

/// The three hop processes of one chain; killed when dropped, also when a test fails.
struct Chain {
    hops: Vec<Child>,
}

impl Chain {
    /// Starts `c`, `b` and `a` in `domain` and waits until each serves.
    fn start(domain: &str) -> Chain {
        let hops = [("c", "-"), ("b", "c"), ("a", "b")]
            .iter()
            .map(|(name, next)| start_hop(domain, name, next))
            .collect();
        Chain { hops }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for hop in &mut self.hops {
            let _ = hop.kill();
            let _ = hop.wait();
        }
    }
}

fn start_hop(domain: &str, name: &str, next: &str) -> Child {
    start_serving(env!("CARGO_BIN_EXE_trace_hop"), &[domain, name, next], &[])
}

/// Records from `rx` until `enough` holds of them, or fails after 15 s.
fn collect_until(
    rx: &mpsc::Receiver<LogRecord>,
    mut enough: impl FnMut(&[LogRecord]) -> bool,
) -> Vec<LogRecord> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut records = Vec::new();
    while !enough(&records) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(record) => records.push(record),
            Err(_) => panic!("the expected log records did not all come: got {records:#?}"),
        }
    }
    records
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn one_request_is_one_trace_with_a_shrinking_deadline_across_three_processes() {
    let domain = format!("t-chain-{}", std::process::id());
    let _chain = Chain::start(&domain);
    let fabric = connect(&domain);
    let (records_tx, records) = mpsc::channel();
    let _tail = fabric
        .subscribe_logs(&LogFilter::new().service_type("hop"), move |record| {
            let _ = records_tx.send(record);
        })
        .unwrap();

    let a = HopClient::connect(&fabric, &domain, "hop", "a")
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    // Each hop works 100 ms before it calls the next.
    let reports = a.relay(vec![100, 100, 0]).unwrap();

    let hops: Vec<&str> = reports.iter().map(|r| r.hop.as_str()).collect();
    assert_eq!(hops, ["a", "b", "c"]);
    let trace_id = &reports[0].trace_id;
    assert!(is_hex(trace_id, 32), "{trace_id}");
    for report in &reports {
        assert_eq!(&report.trace_id, trace_id, "{report:?}");
        assert!(is_hex(&report.span_id, 16), "{report:?}");
    }
    // Each handler's parent is the handler that called it; A's is this test's own span.
    assert!(reports[0].parent_span_id.is_some());
    assert_eq!(reports[1].parent_span_id, Some(reports[0].span_id.clone()));
    assert_eq!(reports[2].parent_span_id, Some(reports[1].span_id.clone()));
    // The deadline travels: each hop has at most what its caller had left, less the caller's
    // 100 ms of work, though B and C have clients with a 30 s timeout of their own.
    let left: Vec<u64> = reports.iter().map(|r| r.remaining_ms.unwrap()).collect();
    assert!(left[0] <= 10_000, "{left:?}");
    assert!(left[1] + 100 <= left[0], "{left:?}");
    assert!(left[2] + 100 <= left[1], "{left:?}");

    // The handlers' log records, picked out by the trace alone.
    let of_trace: Vec<LogRecord> = collect_until(&records, |got| {
        got.iter()
            .filter(|r| r.trace_id() == Some(trace_id.as_str()))
            .count()
            == 3
    })
    .into_iter()
    .filter(|r| r.trace_id() == Some(trace_id.as_str()))
    .collect();
    for report in &reports {
        let record = of_trace
            .iter()
            .find(|r| r.service_id() == Some(report.hop.as_str()))
            .unwrap_or_else(|| panic!("no record of hop {}: {of_trace:#?}", report.hop));
        assert_eq!(record.span_id(), Some(report.span_id.as_str()));
        assert_eq!(record.message(), format!("hop {} relaying", report.hop));
    }

    // A tail bound on the trace id gets that request's records and no others.
    let (traced_tx, traced) = mpsc::channel();
    let _by_trace = fabric
        .subscribe_logs(&LogFilter::new().trace_id(trace_id), move |record| {
            let _ = traced_tx.send(record);
        })
        .unwrap();
    let other = a.relay(vec![0, 0, 0]).unwrap();
    assert_ne!(&other[0].trace_id, trace_id, "a new request is a new trace");
    let mine = a.relay(vec![0]);
    assert!(mine.is_ok());
    // Nothing of the later requests reaches the tail bound on the first trace: it stays
    // empty while the general tail sees the later requests' 4 records arrive.
    collect_until(&records, |got| {
        got.iter()
            .filter(|r| r.trace_id().is_some_and(|t| t != trace_id))
            .count()
            >= 4
    });
    assert!(traced.try_recv().is_err());
}

#[test]
fn a_hop_whose_caller_has_given_up_never_calls_the_next() {
    let domain = format!("t-chain-late-{}", std::process::id());
    let _chain = Chain::start(&domain);
    let fabric = connect(&domain);
    let (warnings_tx, warnings) = mpsc::channel();
    let _tail = fabric
        .subscribe_logs(
            &LogFilter::new()
                .service_type("hop")
                .service_id("b")
                .min_level(LogLevel::Warning),
            move |record| {
                let _ = warnings_tx.send(record);
            },
        )
        .unwrap();

    // A gives up after 1 s; B works 1.5 s before it would call C.
    let a = HopClient::connect(&fabric, &domain, "hop", "a")
        .unwrap()
        .with_timeout(Duration::from_secs(1));
    match a.relay(vec![0, 1500, 0]) {
        // A's own call to B timed out a moment before this one: A may still answer in time,
        // with its own report alone.
        Ok(reports) => assert_eq!(reports.len(), 1, "{reports:?}"),
        Err(Error::Timeout { .. }) => {}
        Err(e) => panic!("expected a timeout, got {e}"),
    }

    // B finishes its work, finds its deadline gone, and does not send the call to C.
    let said = collect_until(&warnings, |got| !got.is_empty());
    assert!(
        said[0].message().contains("next hop not called"),
        "{:?}",
        said[0].message()
    );
    let b = HopClient::connect(&fabric, &domain, "hop", "b").unwrap();
    let c = HopClient::connect(&fabric, &domain, "hop", "c").unwrap();
    assert_eq!(b.runs().unwrap(), 1);
    assert_eq!(c.runs().unwrap(), 0, "C ran a call nobody waited for");
}
