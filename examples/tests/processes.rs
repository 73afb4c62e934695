//! The example binaries as real processes: killed with SIGKILL mid-traffic, they must leave
//! no call hanging and nothing behind on the broker.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fabric_core::{Error, Fabric, FabricConfig};
use fabric_examples::{broker_url, MultiplierClient};

fn unique_domain(test: &str) -> String {
    format!("t-{test}-{}", std::process::id())
}

fn connect(domain: &str) -> Fabric {
    let url = broker_url();
    Fabric::connect(FabricConfig::new(&url, domain, "test_client", "t1")).unwrap_or_else(|e| {
        panic!("these tests need RabbitMQ at {url} (start one with `bash ci/broker.sh`): {e}")
    })
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
    let binary = env!("CARGO_BIN_EXE_multiplier_server");
    let mut server = Command::new(binary)
        .arg(domain)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let stdout = server.stdout.take().unwrap();
    let (serving_tx, serving) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads on to the end, so the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("serving") {
                let _ = serving_tx.send(());
            }
        }
    });
    serving
        .recv_timeout(Duration::from_secs(30))
        .expect("the server process never said it serves");
    server
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
