//! Prints the participants of a fabric system as they come, change and go, until Ctrl-C;
//! then lists who is still there.
//!
//! It learns of them from their keep-alives alone: start `multiplier_server` (which announces
//! itself every second) in another terminal, stop it with Ctrl-C (a goodbye: it leaves at
//! once) or kill it with SIGKILL (it goes silent after the TTL). amqp-fabric (Python)
//! services started with `keep_alive_seconds` show up too, with their address only.
//!
//! Usage: `service_watcher [DOMAIN [TYPE [ID]]]` (default: every domain); `FABRIC_URL` names
//! the broker.

use std::time::Duration;

use fabric_core::{Fabric, FabricConfig, ServiceEvent, ServiceFilter, ServiceInfo};
use fabric_examples::{broker_url, ctrl_c};

/// How long a participant stays listed after its last keep-alive.
const TTL: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filter = ServiceFilter::any();
    if let Some(domain) = args.first() {
        filter = filter.domain(domain);
    }
    if let Some(service_type) = args.get(1) {
        filter = filter.service_type(service_type);
    }
    if let Some(service_id) = args.get(2) {
        filter = filter.service_id(service_id);
    }

    let own_domain = args.first().map_or("my_project", String::as_str);
    let own_id = format!("w{}", std::process::id());
    let config = FabricConfig::new(&broker_url(), own_domain, "service_watcher", &own_id)
        .keep_alive_listen(true)
        .discovery_ttl(TTL);
    let fabric = Fabric::connect(config)?;
    println!("service_watcher: watching {filter} (TTL {TTL:?}; Ctrl-C to stop)");

    let _watcher = fabric.watch_services(&filter, |event| {
        let (mark, what) = match &event {
            ServiceEvent::Appeared(_) => ('+', "appeared"),
            ServiceEvent::Updated(_) => ('~', "updated"),
            ServiceEvent::Left(_) => ('-', "left (goodbye)"),
            ServiceEvent::Silent(_) => ('?', "silent (no keep-alive within the TTL)"),
            _ => ('*', "changed"),
        };
        println!("{mark} {what:<8} {}", describe(event.info()));
    })?;

    let stop_rx = ctrl_c()?;
    stop_rx.recv()?;

    let services = fabric.list_services(&filter)?;
    println!("service_watcher: {} listed at the end", services.len());
    for service in &services {
        println!("  {} (heard {:?} ago)", describe(service), service.age());
    }
    Ok(())
}

/// One line about a participant: its address, and what its keep-alives say if they say it.
fn describe(info: &ServiceInfo) -> String {
    let mut line = info.address.to_string();
    if let Some(version) = &info.version {
        line += &format!(" v{version}");
    }
    if let (Some(host), Some(pid)) = (&info.host, info.pid) {
        line += &format!(" on {host} pid {pid}");
    }
    if let (Some(in_flight), Some(workers)) = (info.in_flight, info.workers) {
        line += &format!(", {in_flight}/{workers} workers busy");
    }
    match &info.methods {
        Some(methods) if !methods.is_empty() => line += &format!(", serves {}", methods.join(" ")),
        Some(_) => line += ", serves nothing",
        // An amqp-fabric peer: its keep-alives carry nothing but the address.
        None => line += " (amqp-fabric: no details)",
    }
    line
}
