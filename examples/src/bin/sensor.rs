//! Publishes temperature readings on the data stream, with headers a subscriber can filter on
//! (`msg_type`, `room`), every 200 ms until Ctrl-C. Watch them with `sensor_monitor`.
//!
//! Usage: `sensor [DOMAIN]` (default `my_project`); `FABRIC_URL` names the broker.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use fabric_core::{Fabric, FabricConfig, Headers};
use fabric_examples::{broker_url, ctrl_c, domain_arg, Reading};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let fabric = Fabric::connect(FabricConfig::new(&broker_url(), &domain, "sensor", "s1"))?;
    let stop_rx = ctrl_c()?;
    for tick in 0u32.. {
        let room = if tick % 2 == 0 { "lab" } else { "office" };
        let reading = Reading {
            room: room.to_owned(),
            celsius: 20.0 + f64::from(tick % 10) / 2.0,
        };
        let headers = Headers::new()
            .with("msg_type", "TEMPERATURE")
            .with("room", room);
        // The receipt resolves when the broker has the message: nothing is lost silently.
        fabric.publish_data_value(&reading, &headers)?.wait()?;
        println!("sensor: published {reading:?}");
        match stop_rx.recv_timeout(Duration::from_millis(200)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    Ok(())
}
