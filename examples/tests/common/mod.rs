//! What the example-process tests share: a fabric for the test itself, and example binaries
//! started as processes and awaited until they serve.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fabric_core::{Fabric, FabricConfig};
use fabric_examples::broker_url;

/// Connects the test's own participant; a missing broker fails the test saying what to do.
pub fn connect(domain: &str) -> Fabric {
    let url = broker_url();
    Fabric::connect(FabricConfig::new(&url, domain, "test_client", "t1")).unwrap_or_else(|e| {
        panic!("these tests need RabbitMQ at {url} (start one with `bash ci/broker.sh`): {e}")
    })
}

/// Starts `binary` with `args` and `env`, and waits (at most 30 s) for the line it prints
/// once it serves (one that contains `serving`): its queues exist from then on.
pub fn start_serving(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (serving_tx, serving) = mpsc::channel();
    std::thread::spawn(move || {
        // Reads on to the end, so the process never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("serving") {
                let _ = serving_tx.send(());
            }
        }
    });
    if serving.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        panic!("{binary} {args:?} never said it serves");
    }
    child
}
