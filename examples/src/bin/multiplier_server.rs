//! Serves `Multiplier` until Ctrl-C (or SIGTERM), then shuts down gracefully.
//!
//! Run several at once: they form a high-availability clique and share the calls.
//!
//! Usage: `multiplier_server [DOMAIN]` (default `my_project`); `FABRIC_URL` names the broker.
//! `MULTIPLIER_WORK_MS` makes each call take that long (a slow service, for fault tests).

use std::time::Duration;

use fabric_core::{Fabric, FabricConfig};
use fabric_examples::{broker_url, ctrl_c, domain_arg, DivError, Multiplier, MultiplierServer};

struct Calculator {
    /// How long each call takes, to play a slow service.
    work: Duration,
}

impl Multiplier for Calculator {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        if !self.work.is_zero() {
            std::thread::sleep(self.work);
        }
        x.wrapping_mul(y)
    }

    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        match (x, y) {
            (_, 0) => Err(DivError::DivisionByZero),
            (i64::MIN, -1) => Err(DivError::Overflow),
            _ => Ok(x / y),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    // Announced every second, so `service_watcher` (and amqp-fabric's list_services) see it.
    let config = FabricConfig::new(&broker_url(), &domain, "server_app", "my_app")
        .keep_alive(Duration::from_secs(1));
    let fabric = Fabric::connect(config)?;
    let work = std::env::var("MULTIPLIER_WORK_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    let server = MultiplierServer::new(Calculator { work })
        .workers(8)
        .serve(&fabric)?;
    println!(
        "multiplier_server: serving {} (Ctrl-C to stop)",
        server.address()
    );

    let stop_rx = ctrl_c()?;
    stop_rx.recv()?;
    println!("multiplier_server: finishing the calls in hand");
    server.close()?;
    println!("multiplier_server: stopped");
    Ok(())
}
