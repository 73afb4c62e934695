//! Connecting: bad names, bad URLs, refused credentials, refused vhosts and unreachable
//! brokers each get their own clear error.

mod support;

use std::time::{Duration, Instant};

use fabric_core::{Error, Fabric, FabricConfig, Refusal};

#[test]
fn a_bad_name_is_refused_before_the_network() {
    // Nothing listens on port 1: reaching the network would give a connect error instead.
    let err = Fabric::connect(FabricConfig::new(
        "amqp://127.0.0.1:1",
        "my project",
        "t",
        "i",
    ))
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "domain", .. }),
        "{err:?}"
    );
}

#[test]
fn names_that_would_share_an_exchange_are_refused_before_the_network() {
    // Both would make the exchange p.api.acc.api.q.r.
    for (domain, service_type, id, kind) in [
        ("p.api.acc", "q", "r", "domain"),
        ("p", "acc", "api.q.r", "service id"),
    ] {
        let config = FabricConfig::new("amqp://127.0.0.1:1", domain, service_type, id);
        let err = Fabric::connect(config).unwrap_err();
        match &err {
            Error::InvalidName {
                kind: refused,
                reason,
                ..
            } => {
                assert_eq!(*refused, kind, "{err}");
                assert!(reason.contains("share an exchange"), "{err}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_bad_url_is_refused_without_showing_the_password() {
    let err = Fabric::connect(FabricConfig::new(
        "http://guest:hunter2@127.0.0.1",
        "d",
        "t",
        "i",
    ))
    .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn wrong_credentials_are_access_refused_at_once() {
    let url = support::broker_url().replacen("guest:guest", "guest:wrong-password", 1);
    let started = Instant::now();
    let err = Fabric::connect(FabricConfig::new(&url, "d", "t", "i")).unwrap_err();
    println!("a wrong password failed after {:?}", started.elapsed());
    match &err {
        // The broker's words prove it closed at once: it says them only to a client that
        // announced `authentication_failure_close` (otherwise it waits 3 s, then hangs up).
        Error::AccessRefused {
            refusal: Refusal::Login,
            message,
            ..
        } => assert!(message.contains("Login was refused"), "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("wrong-password"), "{err}");
}

#[test]
fn an_unreachable_broker_is_a_connect_error() {
    let config = FabricConfig::new("amqp://127.0.0.1:1", "d", "t", "i")
        .connect_timeout(Duration::from_secs(2));
    let err = Fabric::connect(config).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[test]
fn an_unknown_vhost_is_refused() {
    let url = format!("{}-no-such-vhost", support::broker_url());
    let err = Fabric::connect(FabricConfig::new(&url, "d", "t", "i")).unwrap_err();
    match &err {
        Error::AccessRefused {
            refusal: Refusal::VirtualHost,
            message,
            ..
        } => assert!(message.contains("no-such-vhost"), "{err}"),
        other => panic!("{other:?}"),
    }
}
