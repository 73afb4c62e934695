//! `testing::TestBroker` as a user meets it: start a node, serve and call through it, kill
//! it and see the documented outage error, start it again and call again; dropping it
//! removes its files.

use std::sync::mpsc;
use std::time::Duration;

use fabric_core::testing::TestBroker;
use fabric_core::{fabric_service, ConnectionState, Error};

#[fabric_service]
pub trait Echo {
    fn echo(&self, text: String) -> String;
}

struct Parrot;

impl Echo for Parrot {
    fn echo(&self, text: String) -> String {
        text
    }
}

#[test]
fn start_call_kill_outage_restart_and_drop() {
    let mut broker = TestBroker::start();
    assert!(broker.is_running());
    assert_ne!(broker.port(), 5672, "never the default broker's port");
    assert!(broker.url().contains(&broker.port().to_string()));
    let dir = broker.dir().to_owned();
    assert!(dir.exists());

    let server_fabric = broker.connect("tb", "echo", "e1");
    let _server = EchoServer::new(Parrot).serve(&server_fabric).unwrap();
    let fabric = broker.connect("tb", "client", "c1");
    let (states_tx, states) = mpsc::channel();
    fabric.on_connection_change(move |state| {
        let _ = states_tx.send(state.clone());
    });
    let client = EchoClient::connect(&fabric, "tb", "echo", "e1")
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    assert_eq!(client.echo("hello").unwrap(), "hello");

    broker.kill();
    assert!(!broker.is_running());
    // The client's fabric notices the dead socket, then a call waits out its timeout and
    // fails with `Unavailable`: nothing was sent.
    loop {
        let state = states
            .recv_timeout(Duration::from_secs(30))
            .expect("the fabric noticed the broker is gone");
        if matches!(state, ConnectionState::Reconnecting { .. }) {
            break;
        }
    }
    match client.echo("anyone?") {
        Err(Error::Unavailable { .. }) => {}
        other => panic!("expected Unavailable while the broker is down, got {other:?}"),
    }

    broker.start_again();
    assert!(broker.is_running());
    fabric.wait_connected(Duration::from_secs(60)).unwrap();
    server_fabric
        .wait_connected(Duration::from_secs(60))
        .unwrap();
    // The server declares its queues again after reconnecting: an idempotent-style retry
    // rides out the moment they are missing.
    let echoed = client
        .rpc()
        .retry_idempotent("echo", || client.echo("back"))
        .unwrap();
    assert_eq!(echoed, "back");

    broker.restart();
    assert!(broker.is_running());

    drop(client);
    drop(_server);
    drop((fabric, server_fabric));
    drop(broker);
    assert!(
        !dir.exists(),
        "dropping the broker removes {}",
        dir.display()
    );
}
