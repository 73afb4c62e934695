//! Shared by the broker tests: where the broker is and how to get a fresh fabric.
#![allow(dead_code)]

pub mod certs;
pub mod private_broker;
pub mod proxy;
pub mod python;

use std::sync::atomic::{AtomicUsize, Ordering};

use fabric_core::{Fabric, FabricConfig};

/// The broker the tests use: `FABRIC_TEST_URL`, or the local RabbitMQ.
pub fn broker_url() -> String {
    std::env::var("FABRIC_TEST_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A domain no other test (or earlier run) uses, so tests never see each other's services.
pub fn unique_domain(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects a participant; a missing broker fails the test with a message that says what to do.
pub fn connect(domain: &str, service_type: &str, service_id: &str) -> Fabric {
    let url = broker_url();
    match Fabric::connect(FabricConfig::new(&url, domain, service_type, service_id)) {
        Ok(fabric) => fabric,
        Err(e) => panic!(
            "these tests need RabbitMQ at {url} (set FABRIC_TEST_URL to use another): {e}\n\
             start one with `bash ci/broker.sh`"
        ),
    }
}

/// The output of `rabbitmqctl ARGS`, for checks of what exists on the broker.
pub fn rabbitmqctl(args: &[&str]) -> String {
    rabbitmqctl_on(&[], args)
}

/// The output of `rabbitmqctl NODE_ARGS ARGS`: `node_args` picks another node (see
/// `PrivateBroker::rabbitmqctl`).
pub fn rabbitmqctl_on(node_args: &[&str], args: &[&str]) -> String {
    let output = std::process::Command::new("rabbitmqctl")
        .args(node_args)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {args:?}: {e}"));
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The broker's id of the connection of the participant `fqn` (fabric names its connections
/// after the participant), for `rabbitmqctl close_connection`.
pub fn connection_of(fqn: &str) -> String {
    connection_in(rabbitmqctl, fqn)
}

/// The id of `fqn`'s connection in what `ctl` lists.
pub fn connection_in(ctl: impl Fn(&[&str]) -> String, fqn: &str) -> String {
    let connections = ctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    let wanted = format!("fabric {fqn}\"");
    connections
        .lines()
        .find(|line| line.contains(&wanted))
        .and_then(|line| line.split('\t').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no connection of {fqn} in:\n{connections}"))
}
