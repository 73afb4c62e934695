//! Data streams and events through a real RabbitMQ: filters that match and that must not,
//! confirms, durable subscriptions, topic wildcards, and a Python amqp-fabric peer.

mod support;

use support::python::Peer;

use std::sync::mpsc;
use std::time::Duration;

use fabric_core::{Codec, Fabric, FabricConfig, Headers, Inbox, Message};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(10);

fn next(inbox: &Inbox) -> Message {
    inbox
        .recv_timeout(WAIT)
        .unwrap()
        .expect("no message arrived within 10 s")
}

fn text(message: &Message) -> String {
    String::from_utf8(message.body().to_vec()).unwrap()
}

#[test]
fn a_header_filter_delivers_matches_and_nothing_else() {
    let domain = support::unique_domain("data-filter");
    let fabric = support::connect(&domain, "sensor", "s1");
    let inbox = fabric
        .data_subscriber("thermometer")
        .header("msg_type", "TEMPERATURE")
        .header("unit", "C")
        .inbox()
        .unwrap();
    let temperature = Headers::new()
        .with("msg_type", "TEMPERATURE")
        .with("unit", "C");
    // Published in this order on one channel, so a delivered non-match would come first.
    fabric
        .publish_data(b"humidity", &Headers::new().with("msg_type", "HUMIDITY"))
        .unwrap()
        .wait()
        .unwrap();
    fabric
        .publish_data(b"fahrenheit", &temperature.clone().with("unit", "F"))
        .unwrap()
        .wait()
        .unwrap();
    fabric
        .publish_data(b"21.5", &temperature)
        .unwrap()
        .wait()
        .unwrap();
    let message = next(&inbox);
    assert_eq!(text(&message), "21.5");
    assert_eq!(message.publisher_id(), Some("s1"));
    assert_eq!(message.publisher_type(), Some("sensor"));
    assert_eq!(message.headers().get_str("unit"), Some("C"));
    // The caller's headers were not touched by the publish.
    assert_eq!(
        temperature,
        Headers::new()
            .with("msg_type", "TEMPERATURE")
            .with("unit", "C")
    );
}

#[test]
fn match_any_delivers_messages_with_any_of_the_headers() {
    let domain = support::unique_domain("data-any");
    let fabric = support::connect(&domain, "sensor", "s1");
    let inbox = fabric
        .data_subscriber("alarms")
        .header("severity", "high")
        .header("zone", "lab")
        .match_any()
        .inbox()
        .unwrap();
    for (body, headers) in [
        (
            "low-office",
            Headers::new()
                .with("severity", "low")
                .with("zone", "office"),
        ),
        (
            "high-office",
            Headers::new()
                .with("severity", "high")
                .with("zone", "office"),
        ),
        (
            "low-lab",
            Headers::new().with("severity", "low").with("zone", "lab"),
        ),
    ] {
        fabric
            .publish_data(body.as_bytes(), &headers)
            .unwrap()
            .wait()
            .unwrap();
    }
    assert_eq!(text(&next(&inbox)), "high-office");
    assert_eq!(text(&next(&inbox)), "low-lab");
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

#[test]
fn typed_values_decode_with_the_codec_named_in_the_message() {
    let domain = support::unique_domain("data-typed");
    let url = support::broker_url();
    let inbox_fabric = support::connect(&domain, "reader", "r1");
    let inbox = inbox_fabric.data_subscriber("readings").inbox().unwrap();
    for codec in [Codec::Bincode, Codec::Json] {
        let fabric =
            Fabric::connect(FabricConfig::new(&url, &domain, "sensor", "s1").codec(codec)).unwrap();
        let reading = Reading {
            sensor: format!("{codec:?}"),
            celsius: 21.5,
        };
        fabric
            .publish_data_value(&reading, &Headers::new())
            .unwrap()
            .wait()
            .unwrap();
        let message = next(&inbox);
        assert_eq!(message.content_type(), Some(codec.content_type()));
        assert_eq!(message.decode::<Reading>().unwrap(), reading);
    }
}

#[test]
fn every_confirmed_message_arrives_once_and_in_order() {
    let domain = support::unique_domain("data-confirms");
    let fabric = support::connect(&domain, "sensor", "s1");
    let (tx, rx) = mpsc::channel();
    let _subscription = fabric
        .subscribe_data("counter", &Headers::new(), move |m| {
            tx.send(u32::from_le_bytes(m.body().try_into().unwrap()))
                .unwrap()
        })
        .unwrap();
    let receipts: Vec<_> = (0u32..2000)
        .map(|i| {
            fabric
                .publish_data(&i.to_le_bytes(), &Headers::new())
                .unwrap()
        })
        .collect();
    for receipt in receipts {
        receipt.wait().unwrap();
    }
    let received: Vec<u32> = (0..2000).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(received, (0..2000).collect::<Vec<_>>());
}

#[test]
fn a_durable_subscription_receives_what_was_published_while_it_was_down() {
    let domain = support::unique_domain("data-durable");
    let queue = format!("{domain}.archive");
    let fabric = support::connect(&domain, "sensor", "s1");
    let first = fabric.data_subscriber(&queue).durable().inbox().unwrap();
    first.close().unwrap();
    for i in 0..5 {
        fabric
            .publish_data(format!("reading {i}").as_bytes(), &Headers::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    let second = fabric.data_subscriber(&queue).durable().inbox().unwrap();
    let received: Vec<String> = (0..5).map(|_| text(&next(&second))).collect();
    assert_eq!(
        received,
        (0..5).map(|i| format!("reading {i}")).collect::<Vec<_>>()
    );
    second.close().unwrap();
    support::rabbitmqctl(&["delete_queue", &queue]);
}

#[test]
fn messages_not_taken_from_a_dropped_inbox_go_back_to_the_queue() {
    let domain = support::unique_domain("data-requeue");
    let queue = format!("{domain}.work");
    let fabric = support::connect(&domain, "sensor", "s1");
    let inbox = fabric
        .data_subscriber(&queue)
        .durable()
        .prefetch(10)
        .inbox()
        .unwrap();
    for i in 0..10 {
        fabric
            .publish_data(&[i], &Headers::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    assert_eq!(next(&inbox).body(), [0]);
    drop(inbox);
    let again = fabric.data_subscriber(&queue).durable().inbox().unwrap();
    let mut rest: Vec<u8> = (0..9).map(|_| next(&again).body()[0]).collect();
    rest.sort();
    assert_eq!(rest, (1..10).collect::<Vec<u8>>());
    again.close().unwrap();
    support::rabbitmqctl(&["delete_queue", &queue]);
}

#[test]
fn topic_wildcards_route_events() {
    let domain = support::unique_domain("events");
    let fabric = support::connect(&domain, "users", "u1");
    let profile = fabric
        .event_subscriber("profile")
        .topic("user.profile.*")
        .inbox()
        .unwrap();
    let everything = fabric
        .event_subscriber("audit")
        .topic("user.#")
        .inbox()
        .unwrap();
    for key in [
        "user.login",
        "user.profile.photo.changed",
        "user.profile.updated",
    ] {
        fabric
            .publish_event(key, &key.to_owned())
            .unwrap()
            .wait()
            .unwrap();
    }
    // `*` is one word: only the last event matches, and it arrives first.
    let event = next(&profile);
    assert_eq!(event.routing_key(), "user.profile.updated");
    assert_eq!(event.decode::<String>().unwrap(), "user.profile.updated");
    assert_eq!(event.publisher_id(), Some("u1"));
    let all: Vec<String> = (0..3)
        .map(|_| next(&everything).routing_key().to_owned())
        .collect();
    assert_eq!(
        all,
        [
            "user.login",
            "user.profile.photo.changed",
            "user.profile.updated"
        ]
    );
}

#[test]
fn bad_topics_and_names_are_refused_before_the_broker() {
    let domain = support::unique_domain("events-bad");
    let fabric = support::connect(&domain, "users", "u1");
    assert!(fabric.publish_event("user.*", &1).is_err());
    assert!(fabric.publish_event("", &1).is_err());
    assert!(fabric
        .event_subscriber("x")
        .topic("user.pro*")
        .inbox()
        .is_err());
    assert!(fabric.event_subscriber("x").inbox().is_err());
    assert!(fabric.data_subscriber("").inbox().is_err());
    assert!(fabric.data_subscriber("amq.mine").inbox().is_err());
}

#[test]
fn subscribers_sharing_a_name_split_the_messages() {
    let domain = support::unique_domain("data-shared");
    let fabric = support::connect(&domain, "sensor", "s1");
    let a = fabric
        .data_subscriber("workers")
        .prefetch(1)
        .inbox()
        .unwrap();
    let b = fabric
        .data_subscriber("workers")
        .prefetch(1)
        .inbox()
        .unwrap();
    let other = fabric.data_subscriber("observer").inbox().unwrap();
    for i in 0..4u8 {
        fabric
            .publish_data(&[i], &Headers::new())
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut seen: Vec<u8> = vec![
        next(&a).body()[0],
        next(&b).body()[0],
        next(&a).body()[0],
        next(&b).body()[0],
    ];
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
    let observed: Vec<u8> = (0..4).map(|_| next(&other).body()[0]).collect();
    assert_eq!(observed, [0, 1, 2, 3]);
}

#[test]
fn a_panicking_handler_loses_one_message_and_the_subscription_lives_on() {
    let domain = support::unique_domain("data-panic");
    let fabric = support::connect(&domain, "sensor", "s1");
    let (tx, rx) = mpsc::channel();
    let _subscription = fabric
        .subscribe_data("fragile", &Headers::new(), move |m| {
            assert_ne!(m.body(), b"poison", "handler refuses poison");
            tx.send(m.into_body()).unwrap();
        })
        .unwrap();
    fabric
        .publish_data(b"poison", &Headers::new())
        .unwrap()
        .wait()
        .unwrap();
    fabric
        .publish_data(b"fine", &Headers::new())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), b"fine");
}

#[test]
fn python_and_rust_share_the_data_stream() {
    let domain = support::unique_domain("data-python");
    let fabric = support::connect(&domain, "rust_sensor", "r1");

    // Python publishes, Rust receives.
    let inbox = fabric
        .data_subscriber("rust_reader")
        .header("msg_type", "TEMPERATURE")
        .inbox()
        .unwrap();
    let publisher = Peer::spawn("data_peer.py", &[&domain, "publish"]);
    assert_eq!(publisher.next_line(), "sent");
    publisher.finish();
    let message = next(&inbox);
    assert_eq!(
        message.decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"reading": 21.5})
    );
    assert_eq!(message.publisher_id(), Some("py1"));
    assert_eq!(message.publisher_type(), Some("py_sensor"));

    // Rust publishes, Python receives.
    let subscriber = Peer::spawn("data_peer.py", &[&domain, "subscribe"]);
    assert_eq!(subscriber.next_line(), "ready");
    fabric
        .publish_data(
            br#"{"reading": 19.0}"#,
            &Headers::new().with("msg_type", "TEMPERATURE"),
        )
        .unwrap()
        .wait()
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(&subscriber.next_line()).unwrap();
    subscriber.finish();
    assert_eq!(line["body"], r#"{"reading": 19.0}"#);
    assert_eq!(line["headers"]["service_id"], "r1");
    assert_eq!(line["headers"]["msg_type"], "TEMPERATURE");
}

#[test]
fn publishing_resumes_on_the_next_connection_after_the_broker_closes_this_one() {
    let domain = support::unique_domain("data-conn-lost");
    let fabric = support::connect(&domain, "sensor", "s1");
    let watcher = support::connect(&domain, "monitor", "m1");
    // Queue names are the broker's, not the domain's: this one is the test's own.
    let inbox = watcher
        .data_subscriber(&format!("{domain}.readings"))
        .inbox()
        .unwrap();
    fabric
        .publish_data(b"before", &Headers::new())
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(text(&next(&inbox)), "before");
    let connection = support::connection_of(&fabric.address().fqn());
    support::rabbitmqctl(&[
        "close_connection",
        &connection,
        "streams test: connection lost",
    ]);
    let (tx, rx) = mpsc::channel();
    let publisher = fabric.clone();
    std::thread::spawn(move || {
        // Each publish and its receipt must end: confirmed, or failed because the connection
        // broke while it awaited its confirm.
        let outcomes: Vec<_> = (0..200)
            .map(|n| {
                publisher
                    .publish_data(format!("after-{n}").as_bytes(), &Headers::new())
                    .and_then(|receipt| receipt.wait())
            })
            .collect();
        tx.send(outcomes).unwrap();
    });
    let outcomes = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("publishing hung after the connection died");
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Ok(()) | Err(fabric_core::Error::ConnectionLost { .. })
            ),
            "{outcome:?}"
        );
    }
    assert!(outcomes.last().unwrap().is_ok(), "{outcomes:?}");
    assert!(matches!(
        fabric.connection_state(),
        fabric_core::ConnectionState::Connected { generation: 2, .. }
    ));
    // Every confirmed message arrives (once); an unconfirmed one may or may not.
    let confirmed: Vec<String> = (0..200)
        .filter(|n| outcomes[*n].is_ok())
        .map(|n| format!("after-{n}"))
        .collect();
    let mut received = Vec::new();
    // Until the queue stays quiet for half a second: counting copies needs an end, and no
    // event says "no more".
    while let Some(message) = inbox.recv_timeout(Duration::from_millis(500)).unwrap() {
        received.push(text(&message));
    }
    for body in &confirmed {
        let copies = received.iter().filter(|r| *r == body).count();
        assert_eq!(copies, 1, "{body} arrived {copies} times");
    }
}
