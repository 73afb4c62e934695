//! Prints the logs of a whole domain, from Rust and Python services alike, until Ctrl-C.
//!
//! Usage: `log_tail [DOMAIN] [MIN_LEVEL] [SERVICE_TYPE]`: domain default `my_project`, level
//! one of DEBUG, INFO, WARNING, ERROR, CRITICAL (default: every record); `FABRIC_URL` names
//! the broker. The broker filters: records the tail does not want never reach it.

use fabric_core::{Fabric, FabricConfig, LogFilter, LogLevel};
use fabric_examples::{broker_url, ctrl_c};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let domain = args.next().unwrap_or_else(|| "my_project".to_owned());
    let mut filter = LogFilter::new();
    if let Some(level) = args.next() {
        let level = LogLevel::from_name(&level.to_uppercase()).ok_or_else(|| {
            anyhow::anyhow!("unknown level {level:?}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        })?;
        filter = filter.min_level(level);
    }
    if let Some(service_type) = args.next() {
        filter = filter.service_type(&service_type);
    }

    let fabric = Fabric::connect(FabricConfig::new(
        &broker_url(),
        &domain,
        "log_tail",
        "tail",
    ))?;
    let tail = fabric.subscribe_logs(&filter, |record| {
        let place = match (record.file(), record.line()) {
            (Some(file), Some(line)) => format!(" ({file}:{line})"),
            _ => String::new(),
        };
        println!("{record}{place}");
    })?;
    eprintln!("log_tail: following {domain}.log.records (Ctrl-C to stop)");

    let stop_rx = ctrl_c()?;
    stop_rx.recv()?;
    tail.close()?;
    Ok(())
}
