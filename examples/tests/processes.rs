//! The example binaries as real processes: killed with SIGKILL mid-traffic, they must leave
//! no call hanging and nothing behind on the broker.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use amiquip::{
    AmqpProperties, Connection, ConsumerMessage, ConsumerOptions, Publish, QueueDeclareOptions,
};
use common::{connect, start_serving};
use fabric_core::{Codec, Error, ServiceAddress, BINCODE_CONTENT_TYPE};
use fabric_examples::{broker_url, MultiplierClient, MultiplierMultiplyArgs};

fn unique_domain(test: &str) -> String {
    format!("t-{test}-{}", std::process::id())
}

fn start(binary: &str, domain: &str) -> Child {
    Command::new(binary)
        .arg(domain)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"))
}

/// Starts the example server and waits (at most 30 s) for the line it prints once it
/// serves: its queues exist from then on.
fn start_server(domain: &str) -> Child {
    start_server_with(domain, &[])
}

/// [`start_server`] with environment variables for the server.
fn start_server_with(domain: &str, env: &[(&str, &str)]) -> Child {
    start_serving(env!("CARGO_BIN_EXE_multiplier_server"), &[domain], env)
}

/// Queues on the broker whose names mention `domain`.
fn queues_of(domain: &str) -> Vec<String> {
    let output = Command::new("rabbitmqctl")
        .args(["list_queues", "name", "messages"])
        .output()
        .expect("run rabbitmqctl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(domain))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_server_leaves_no_call_hanging_and_no_queue_behind() {
    let domain = unique_domain("kill-server");
    let mut server = start_server(&domain);
    let fabric = connect(&domain);
    let client = MultiplierClient::connect(&fabric, &domain, "server_app", "my_app")
        .unwrap()
        .with_timeout(Duration::from_secs(3));

    // Four threads call without pause, so calls are in flight when the server dies.
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..4 {
        let (client, stop, done_tx) = (client.clone(), Arc::clone(&stop), done_tx.clone());
        std::thread::spawn(move || {
            let (mut answered, mut failed) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client.multiply(t, 3) {
                    Ok(product) => {
                        assert_eq!(product, t * 3);
                        answered += 1;
                    }
                    Err(e) => failed.push(e),
                }
            }
            done_tx.send((answered, failed)).unwrap();
        });
    }
    drop(done_tx);
    // Let the callers get going: wait until 200 calls have been answered elsewhere too.
    for _ in 0..200 {
        client.multiply(1, 1).unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
    // With the server gone its queues are deleted: calls now fail at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(client.multiply(1, 1), Err(Error::NoSuchService { .. })) {
        assert!(
            Instant::now() < deadline,
            "calls never started failing fast"
        );
    }
    stop.store(true, Ordering::Relaxed);

    // Every caller thread comes back; a call in flight at the kill ends in a timeout at worst.
    for _ in 0..4 {
        let (answered, failed) = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a caller thread hung after the server was killed");
        assert!(answered > 0);
        for e in failed {
            assert!(
                matches!(e, Error::NoSuchService { .. } | Error::Timeout { .. }),
                "unexpected error: {e:?}"
            );
        }
    }
    assert_eq!(queues_of(&domain), Vec::<String>::new());
}

#[test]
fn a_killed_client_leaves_the_server_serving_and_no_queue_behind() {
    let domain = unique_domain("kill-client");
    let mut server = start_server(&domain);
    let fabric = connect(&domain);
    let client = MultiplierClient::connect(&fabric, &domain, "server_app", "my_app").unwrap();

    let mut doomed = start(env!("CARGO_BIN_EXE_multiplier_client"), &domain);
    // The doomed client sends 1600 calls from 16 threads; kill it while it does.
    for _ in 0..50 {
        client.multiply(2, 2).unwrap();
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();

    // The server answers as before, and nothing waits in its queues.
    for i in 0..100 {
        assert_eq!(client.multiply(i, 2).unwrap(), i * 2);
    }
    for line in queues_of(&domain) {
        assert!(line.ends_with("\t0"), "messages left behind: {line}");
    }

    // SIGINT: the example server shuts down gracefully and exits 0.
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    assert!(server.wait().unwrap().success());
    drop(fabric);
}

#[test]
fn a_clique_member_killed_with_calls_in_hand_loses_no_call() {
    const CALLS: usize = 300;
    /// Calls kept in flight: as many as the two servers' workers (8 each) can hold.
    const WINDOW: usize = 16;
    const KILL_AFTER: usize = 100;
    let domain = unique_domain("kill-clique");
    // Each call takes 20 ms, so the victim holds calls (up to 8) when it dies.
    let slow = [("MULTIPLIER_WORK_MS", "20")];
    let mut victim = start_server_with(&domain, &slow);
    let mut survivor = start_server_with(&domain, &slow);
    let queue = ServiceAddress::new(&domain, "server_app", "my_app")
        .unwrap()
        .method_queue("multiply");

    // The caller is raw AMQP, so a second reply to a call would be seen (fabric's client
    // drops replies it no longer waits for).
    let url = broker_url();
    let mut connection = Connection::insecure_open(&url)
        .unwrap_or_else(|e| panic!("these tests need RabbitMQ at {url}: {e}"));
    let channel = connection.open_channel(None).unwrap();
    let replies = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap();
    let consumer = replies
        .consume(ConsumerOptions {
            no_ack: true,
            ..ConsumerOptions::default()
        })
        .unwrap();
    let send = |n: usize| {
        let args = MultiplierMultiplyArgs { x: n as i64, y: 3 };
        let body = Codec::Bincode.encode(&args, "the arguments").unwrap();
        let properties = AmqpProperties::default()
            .with_content_type(BINCODE_CONTENT_TYPE.to_owned())
            .with_type_("call".to_owned())
            .with_correlation_id(format!("call-{n}"))
            .with_reply_to(replies.name().to_owned());
        channel
            .basic_publish(
                "",
                Publish::with_properties(&body, queue.as_str(), properties),
            )
            .unwrap();
    };

    let mut sent_at = HashMap::new();
    let mut answers: HashMap<String, usize> = HashMap::new();
    let mut wrong = Vec::new();
    let (mut sent, mut answered) = (0, 0);
    let mut killed_at = None;
    let mut longest = (Duration::ZERO, String::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered < CALLS {
        while sent < CALLS && sent - answered < WINDOW {
            sent_at.insert(format!("call-{sent}"), Instant::now());
            send(sent);
            sent += 1;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(ConsumerMessage::Delivery(reply)) = consumer.receiver().recv_timeout(left) else {
            panic!("only {answered} of {CALLS} calls were answered within 60 s");
        };
        let id = reply
            .properties
            .correlation_id()
            .clone()
            .unwrap_or_default();
        let count = answers.entry(id.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            continue; // a duplicate: counted, not an answer
        }
        answered += 1;
        let n: i64 = id.trim_start_matches("call-").parse().unwrap();
        match Codec::Bincode.decode::<i64>(&reply.body, "the product") {
            Ok(product) if product == n * 3 => {}
            other => wrong.push((id.clone(), other)),
        }
        let latency = sent_at[&id].elapsed();
        if latency > longest.0 {
            longest = (latency, id);
        }
        if answered == KILL_AFTER {
            victim.kill().unwrap(); // SIGKILL
            victim.wait().unwrap();
            killed_at = Some(Instant::now());
        }
    }
    let drained_after = killed_at.expect("the victim was killed").elapsed();
    victim.wait().unwrap(); // reaped already; says so to the lint

    // One more call through the survivor: a duplicate reply to an earlier call, if any were
    // coming, would be queued before this one's reply (one reply queue, in order per server).
    send(CALLS);
    loop {
        let Ok(ConsumerMessage::Delivery(reply)) =
            consumer.receiver().recv_timeout(Duration::from_secs(10))
        else {
            panic!("the survivor did not answer a last call");
        };
        let id = reply
            .properties
            .correlation_id()
            .clone()
            .unwrap_or_default();
        if id == format!("call-{CALLS}") {
            break;
        }
        *answers.entry(id).or_insert(0) += 1;
    }
    consumer.cancel().unwrap();
    for _ in consumer.receiver().iter() {}
    connection.close().unwrap();

    let twice: Vec<_> = answers.iter().filter(|(_, n)| **n > 1).collect();
    let lost = CALLS - answers.len();
    println!(
        "kill -9 in a clique: {CALLS} calls, {lost} lost, {} answered twice, longest call {:?} \
         ({}), all answered {drained_after:?} after the kill",
        twice.len(),
        longest.0,
        longest.1
    );
    assert_eq!(lost, 0);
    // A server acks after it replies, so a reply published in the instant before the kill
    // and the reply to the redelivered call can both reach the wire: at most one per call
    // the victim held (8 workers, prefetch 1). fabric's caller keeps the first reply of a
    // correlation id and drops the second, so the caller still sees one answer per call.
    assert!(twice.len() <= 8, "answered twice: {twice:?}");
    assert_eq!(wrong, Vec::new(), "wrong answers");

    // The survivor stops gracefully.
    let pid = survivor.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    assert!(survivor.wait().unwrap().success());
}
