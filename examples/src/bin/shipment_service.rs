//! The shipment service of the shop choreography: ships reserved stock
//! (`stock.reserved` → `shipment.shipped`), or fails for parcels over three items
//! (`shipment.failed`, which the inventory compensates). Runs until Ctrl-C.
//!
//! Usage: `shipment_service [DOMAIN]`.

use fabric_core::{Codec, Fabric, FabricConfig};
use fabric_examples::shop::{Shipment, StockChange};
use fabric_examples::{broker_url, ctrl_c, domain_arg};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    // JSON events: readable by the order desk's HTTP clients (through fabric-gateway) and by
    // Python subscribers; fabric subscribers decode by content type either way.
    let fabric = Fabric::connect(
        FabricConfig::new(&broker_url(), &domain, "shipment", "s1").codec(Codec::Json),
    )?;
    let publisher = fabric.clone();
    let _subscription = fabric
        .event_subscriber("shipment")
        .topic("stock.reserved")
        .handle(move |event| {
            let Ok(reserved) = event.decode::<StockChange>() else {
                eprintln!("shipment: unreadable event");
                return;
            };
            let (topic, detail) = if reserved.quantity > 3 {
                ("shipment.failed", "parcel too heavy".to_owned())
            } else {
                (
                    "shipment.shipped",
                    format!("TRACK-{:05}", reserved.order_id * 7919 % 100_000),
                )
            };
            let shipment = Shipment {
                order_id: reserved.order_id,
                item: reserved.item,
                quantity: reserved.quantity,
                detail,
            };
            println!("shipment: {topic} {shipment:?}");
            if let Err(e) = publisher
                .publish_event(topic, &shipment)
                .and_then(|r| r.wait())
            {
                eprintln!("shipment: could not publish {topic}: {e}");
            }
        })?;
    println!("shipment_service: ready (Ctrl-C to stop)");
    let stop_rx = ctrl_c()?;
    stop_rx.recv()?;
    Ok(())
}
