//! A service that logs through the broker: a record at each level every second, shipped to
//! the domain's log exchange and also written to stderr, until Ctrl-C (or SIGTERM).
//!
//! Watch it with `log_tail` (or any amqp-fabric log consumer) in another terminal.
//!
//! Usage: `remote_logging_service [DOMAIN]` (default `my_project`); `FABRIC_URL` names the
//! broker.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use fabric_core::{Fabric, FabricConfig, RemoteLogger};
use fabric_examples::{broker_url, ctrl_c, domain_arg};
use log::LevelFilter;

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let fabric = Fabric::connect(FabricConfig::new(
        &broker_url(),
        &domain,
        "logging_app",
        "l1",
    ))?;
    // Everything down to Debug goes to the broker (Rust's Trace would travel as DEBUG);
    // warnings and errors also to stderr. A full queue drops the oldest records, never
    // blocks: `capacity` is how many may wait for a slow broker.
    let logger = RemoteLogger::builder(&fabric)
        .level(LevelFilter::Debug)
        .stderr(LevelFilter::Warn)
        .capacity(4096)
        .install()?;
    println!("remote_logging_service: logging to {domain}.log.records (Ctrl-C to stop)");

    let stop_rx = ctrl_c()?;
    for round in 1u64.. {
        log::trace!("round {round}: not shipped (below the logger's level)");
        log::debug!("round {round}: cache hit ratio {:.2}", 0.97);
        log::info!("round {round}: order {} accepted", 1000 + round);
        log::warn!("round {round}: stock of item {} is low", round % 7);
        log::error!("round {round}: payment provider timed out");
        match stop_rx.recv_timeout(Duration::from_secs(1)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    // Give what is still queued a chance to reach the broker before the process ends.
    log::logger().flush();
    println!(
        "remote_logging_service: stopped; {} records shipped, {} dropped",
        logger.shipped(),
        logger.dropped()
    );
    Ok(())
}
