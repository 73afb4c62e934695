//! Subscribes to the lab's temperature readings only: the broker filters on the headers, so
//! the office's readings never reach this process. Prints them until Ctrl-C.
//!
//! Usage: `sensor_monitor [DOMAIN]` (default `my_project`); `FABRIC_URL` names the broker.

use fabric_core::{Fabric, FabricConfig};
use fabric_examples::{broker_url, ctrl_c, domain_arg, Reading};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let fabric = Fabric::connect(FabricConfig::new(&broker_url(), &domain, "monitor", "m1"))?;
    let _subscription = fabric
        .data_subscriber("lab_monitor")
        .header("msg_type", "TEMPERATURE")
        .header("room", "lab")
        .handle(|message| match message.decode::<Reading>() {
            Ok(reading) => println!(
                "sensor_monitor: {:.1} °C in the {} (from {})",
                reading.celsius,
                reading.room,
                message.publisher_id().unwrap_or("?")
            ),
            Err(e) => eprintln!("sensor_monitor: unreadable message: {e}"),
        })?;
    println!("sensor_monitor: watching the lab (Ctrl-C to stop)");
    let stop_rx = ctrl_c()?;
    stop_rx.recv()?;
    Ok(())
}
