//! `fabric events PATTERN`: follow a domain's events whose topic matches.

use crate::cli::EventsArgs;
use crate::commands::{data, queue_name, wants_more};
use crate::connect;
use crate::failure::Failure;

pub fn run(url: &str, args: EventsArgs) -> Result<(), Failure> {
    let fabric = connect::fabric(url, &args.domain, false)?;
    let inbox = fabric
        .event_subscriber(&queue_name("events"))
        .topic(&args.pattern)
        .inbox()?;
    eprintln!(
        "fabric: following the events of domain {} matching {}",
        args.domain, args.pattern
    );
    let mut printed = 0;
    while wants_more(printed, args.count) {
        let message = inbox.recv()?;
        data::print(&message, Some(message.routing_key()), args.json);
        printed += 1;
    }
    Ok(())
}
