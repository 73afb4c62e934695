//! `{Trait}Client::local`: a generated client whose calls run on an implementation in this
//! process, with no broker, and fail as they would over one; and faults on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_core::testing::Fault;
use fabric_core::{fabric_service, CallContext, Codec, Error, RetryPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct DivError(String);

#[fabric_service]
pub trait Calc {
    fn multiply(&self, x: i64, y: i64) -> i64;
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
    fn explode(&self);
    /// Waits until the test lets it go.
    fn slow(&self);
    /// What the call's context says: method, correlation id set, deadline set.
    fn context(&self) -> (String, bool, bool);
    /// Takes a type bincode cannot decode (it needs `deserialize_any`).
    fn describe(&self, value: serde_json::Value) -> String;
    #[fabric(idempotent)]
    fn count(&self) -> u32;
}

#[derive(Default)]
struct Impl {
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    slow_done: Arc<AtomicBool>,
}

impl Calc for Impl {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        x.checked_div(y)
            .ok_or_else(|| DivError("division by zero".into()))
    }
    fn explode(&self) {
        panic!("boom");
    }
    fn slow(&self) {
        if let Some(release) = self.release.lock().unwrap().take() {
            let _ = release.recv();
        }
        self.slow_done.store(true, Ordering::SeqCst);
    }
    fn context(&self) -> (String, bool, bool) {
        let call = CallContext::current().expect("a call is current");
        (
            call.method().to_owned(),
            call.correlation_id().is_some(),
            call.remaining().is_some(),
        )
    }
    fn describe(&self, value: serde_json::Value) -> String {
        value.to_string()
    }
    fn count(&self) -> u32 {
        7
    }
}

/// Code under test takes "a client": it cannot tell a local one from one over the broker.
fn area(calc: &CalcClient, w: i64, h: i64) -> fabric_core::Result<i64> {
    calc.multiply(w, h)
}

#[test]
fn a_local_client_is_the_generated_client() {
    let calc = CalcClient::local(Impl::default());
    assert_eq!(area(&calc, 6, 7).unwrap(), 42);
    assert!(calc.health_check().unwrap());
    // JSON, as a Python peer would send, goes through the dispatcher too.
    assert_eq!(calc.with_codec(Codec::Json).multiply(2, 3).unwrap(), 6);
}

#[test]
fn the_services_own_error_arrives_intact() {
    let calc = CalcClient::local(Impl::default());
    assert_eq!(calc.divide(9, 3).unwrap(), Ok(3));
    assert_eq!(
        calc.divide(1, 0).unwrap(),
        Err(DivError("division by zero".into()))
    );
}

#[test]
fn a_panic_is_a_remote_error_of_kind_panic() {
    let calc = CalcClient::local(Impl::default());
    match calc.explode() {
        Err(Error::Remote { kind, message, .. }) => {
            assert_eq!(kind, "panic");
            assert!(message.contains("boom"), "{message}");
        }
        other => panic!("expected a panic reply, got {other:?}"),
    }
    // The client goes on working.
    assert_eq!(calc.multiply(2, 2).unwrap(), 4);
}

#[test]
fn the_call_context_is_set() {
    let calc = CalcClient::local(Impl::default());
    assert_eq!(calc.context().unwrap(), ("context".to_owned(), true, true));
}

#[test]
fn a_type_that_does_not_round_trip_fails_as_on_the_wire() {
    let calc = CalcClient::local(Impl::default());
    // bincode encodes a JSON value but cannot decode one: the server refuses the arguments.
    match calc.describe(serde_json::json!({"a": 1})) {
        Err(Error::BadArguments { .. }) => {}
        other => panic!("expected BadArguments, got {other:?}"),
    }
    // In JSON it round-trips.
    let json = calc.with_codec(Codec::Json);
    assert_eq!(json.describe(serde_json::json!([1])).unwrap(), "[1]");
}

#[test]
fn bad_arguments_and_unknown_methods_are_refused_as_by_a_server() {
    #[derive(Serialize)]
    struct Wrong {
        z: String,
    }
    let calc = CalcClient::local(Impl::default()).with_codec(Codec::Json);
    let bad: fabric_core::Result<i64> = calc.rpc().call("multiply", &Wrong { z: "a".into() });
    assert!(matches!(bad, Err(Error::BadArguments { .. })), "{bad:?}");
    let unknown: fabric_core::Result<i64> = calc.rpc().call("nope", &Wrong { z: "a".into() });
    assert!(
        matches!(unknown, Err(Error::UnknownMethod { .. })),
        "{unknown:?}"
    );
}

#[test]
fn a_call_longer_than_the_timeout_times_out_and_its_thread_is_joined_on_drop() {
    let (release, released) = std::sync::mpsc::channel();
    let imp = Impl {
        release: Mutex::new(Some(released)),
        ..Impl::default()
    };
    let done = Arc::clone(&imp.slow_done);
    let calc = CalcClient::local(imp).with_timeout(Duration::from_millis(50));
    match calc.slow() {
        Err(Error::Timeout { timeout, .. }) => assert_eq!(timeout, Duration::from_millis(50)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(!done.load(Ordering::SeqCst), "the method is still running");
    release.send(()).unwrap();
    // Dropping the last client waits for the call still running.
    drop(calc);
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn an_idempotent_method_retries_through_injected_interruptions() {
    let calc = CalcClient::local(Impl::default())
        .with_retry(RetryPolicy::new(3, Duration::from_millis(1)));
    let faults = calc.rpc().local_faults().expect("a local client");
    faults.fail_next(2, Fault::CallInterrupted);
    assert_eq!(calc.count().unwrap(), 7);
    assert_eq!((faults.injected(), faults.pending()), (2, 0));

    // More faults than attempts: the last attempt's error comes back.
    faults.fail_next(3, Fault::Unavailable);
    assert!(matches!(calc.count(), Err(Error::Unavailable { .. })));
    assert_eq!(faults.pending(), 0);
}

#[test]
fn a_method_that_is_not_idempotent_is_not_retried() {
    let calc = CalcClient::local(Impl::default());
    let faults = calc.rpc().local_faults().unwrap();
    faults.fail_next(2, Fault::CallInterrupted);
    assert!(matches!(
        calc.multiply(1, 2),
        Err(Error::CallInterrupted { .. })
    ));
    assert_eq!(faults.pending(), 1);
    faults.clear();
    assert_eq!(calc.multiply(1, 2).unwrap(), 2);
}

#[test]
fn each_fault_is_the_error_of_a_broker_client() {
    let calc = CalcClient::local(Impl::default()).with_timeout(Duration::from_secs(3));
    let faults = calc.rpc().local_faults().unwrap();
    faults.fail_once(Fault::Timeout);
    faults.fail_once(Fault::Unavailable);
    faults.fail_once(Fault::CallInterrupted);
    assert!(matches!(
        calc.multiply(1, 1),
        Err(Error::Timeout { timeout, .. }) if timeout == Duration::from_secs(3)
    ));
    assert!(matches!(
        calc.multiply(1, 1),
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        calc.multiply(1, 1),
        Err(Error::CallInterrupted { .. })
    ));
    assert_eq!(calc.multiply(1, 1).unwrap(), 1);
}

#[test]
fn a_call_dropped_unwaited_is_joined_when_the_last_client_goes() {
    let (release, released) = std::sync::mpsc::channel();
    let imp = Impl {
        release: Mutex::new(Some(released)),
        ..Impl::default()
    };
    let done = Arc::clone(&imp.slow_done);
    let calc = CalcClient::local(imp);
    let pending = calc
        .rpc()
        .start_call::<_, ()>("slow", &CalcSlowArgs {})
        .unwrap();
    drop(pending);
    let clone = calc.clone();
    drop(calc);
    release.send(()).unwrap();
    drop(clone);
    assert!(done.load(Ordering::SeqCst));
}
