//! `fabric services`: who announces themselves, as a table or JSON, once or live.

use std::time::Instant;

use fabric_core::{ServiceEvent, ServiceFilter, ServiceInfo};
use serde_json::{json, Value};

use crate::cli::ServicesArgs;
use crate::connect;
use crate::failure::Failure;
use crate::output::{self, Paint};
use crate::target;

pub fn run(url: &str, args: ServicesArgs) -> Result<(), Failure> {
    let domain = args.domain.as_deref().unwrap_or(connect::ANY_DOMAIN);
    let fabric = connect::fabric(url, domain, true)?;
    let mut filter = ServiceFilter::any();
    if let Some(domain) = &args.domain {
        filter = filter.domain(domain);
    }
    if let Some(service_type) = &args.service_type {
        filter = filter.service_type(service_type);
    }
    let events = fabric.service_events(&filter)?;
    if args.watch {
        eprintln!("fabric: watching services (Ctrl-C to stop)");
        let paint = Paint::stdout();
        loop {
            let event = events.recv()?;
            print_event(&event, args.json, &paint);
        }
    }
    // Every keep-alive heard within the wait: the registry keeps the latest of each.
    let deadline = Instant::now() + args.listen.wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if events.recv_timeout(left)?.is_none() {
            break;
        }
    }
    let services = fabric.list_services(&filter)?;
    if args.json {
        let all: Vec<Value> = services.iter().map(ServiceInfo::to_json).collect();
        println!("{}", Value::Array(all));
    } else if services.is_empty() {
        eprintln!(
            "no service announced itself within {:?}{}",
            args.listen.wait,
            args.domain
                .as_deref()
                .map(|d| format!(" in domain {d}"))
                .unwrap_or_default()
        );
    } else {
        let rows: Vec<Vec<String>> = services.iter().map(row).collect();
        output::table(
            &[
                "SERVICE",
                "VERSION",
                "HOST",
                "PID",
                "UPTIME",
                "IN FLIGHT",
                "WORKERS",
                "METHODS",
                "CONTRACT",
            ],
            &rows,
        );
    }
    Ok(())
}

/// One line per event: `+` appeared, `~` updated, `-` left, `?` silent.
fn print_event(event: &ServiceEvent, json: bool, paint: &Paint) {
    let (word, mark, colour) = match event {
        ServiceEvent::Appeared(_) => ("appeared", "+", "32"),
        ServiceEvent::Updated(_) => ("updated", "~", "36"),
        ServiceEvent::Left(_) => ("left", "-", "33"),
        ServiceEvent::Silent(_) => ("silent", "?", "31"),
        _ => ("changed", "~", "36"),
    };
    let info = event.info();
    if json {
        let mut value = info.to_json();
        value["event"] = json!(word);
        println!("{value}");
    } else {
        let row = row(info);
        println!(
            "{} {:<8} {}  version {}  host {}  pid {}  in flight {}  workers {}",
            paint.paint(colour, mark),
            word,
            row[0],
            row[1],
            row[2],
            row[3],
            row[5],
            row[6]
        );
    }
}

/// The table's cells for one participant.
fn row(info: &ServiceInfo) -> Vec<String> {
    vec![
        target::show(&info.address),
        output::or_dash(info.version.as_deref()),
        output::or_dash(info.host.as_deref()),
        output::or_dash(info.pid),
        output::or_dash(info.uptime().map(output::short_duration)),
        output::or_dash(info.in_flight),
        output::or_dash(info.workers),
        output::or_dash(info.methods.as_ref().map(|m| m.join(","))),
        output::or_dash(info.contract_hash()),
    ]
}
