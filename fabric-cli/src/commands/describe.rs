//! `fabric describe DOMAIN/TYPE/ID`: a service's version, contract hash and methods.

use std::time::Instant;

use fabric_core::{Fabric, ServiceAddress, ServiceEvent, ServiceFilter, ServiceInfo};
use serde_json::Value;

use crate::cli::DescribeArgs;
use crate::connect;
use crate::failure::{Code, Failure};
use crate::output;
use crate::target;

pub fn run(url: &str, args: DescribeArgs) -> Result<(), Failure> {
    let address = target::parse(&args.service)?;
    let fabric = connect::fabric(url, address.domain(), true)?;
    let Some(info) = heard(&fabric, &address, args.wait)? else {
        return Err(Failure::new(
            Code::NoSuchService,
            format!(
                "no keep-alive from {} within {:?}: it is not running, or does not announce \
                 itself (amqp-fabric needs keep_alive_seconds)",
                args.service, args.wait
            ),
        ));
    };
    if args.json {
        println!("{}", info.to_json());
        return Ok(());
    }
    let service = info.contract().map(|c| c.service().to_owned());
    println!(
        "{}{}",
        target::show(&info.address),
        service.map(|s| format!("  ({s})")).unwrap_or_default()
    );
    println!("version   {}", output::or_dash(info.version.as_deref()));
    println!(
        "instance  {}  host {}  pid {}",
        output::or_dash(info.instance.as_deref()),
        output::or_dash(info.host.as_deref()),
        output::or_dash(info.pid)
    );
    match info.contract() {
        Some(contract) => {
            println!("contract  {}", contract.hash());
            println!("methods");
            for method in contract.methods() {
                let idempotent = if method.is_idempotent() {
                    "  [idempotent]"
                } else {
                    ""
                };
                println!("  {method}{idempotent}");
                if !method.summary().is_empty() {
                    println!("      {}", method.summary());
                }
            }
        }
        None => {
            println!("contract  none announced (an amqp-fabric service, or a server without one)");
            match &info.methods {
                Some(methods) => println!("methods   {}", methods.join(", ")),
                None => println!("methods   not announced"),
            }
        }
    }
    Ok(())
}

/// The service's latest keep-alive, waiting at most `wait` for one; a fabric participant
/// that has announced only itself so far (no servers yet) is given until the end of the
/// wait to announce its contract.
pub fn heard(
    fabric: &Fabric,
    address: &ServiceAddress,
    wait: std::time::Duration,
) -> Result<Option<ServiceInfo>, Failure> {
    let events = fabric.service_events(&ServiceFilter::from(address))?;
    let deadline = Instant::now() + wait;
    let mut latest: Option<ServiceInfo> = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left)? {
            Some(ServiceEvent::Appeared(info) | ServiceEvent::Updated(info)) => {
                let complete = info.contract().is_some()
                    || info.raw == Value::Null
                    || info.methods.as_ref().is_some_and(|m| !m.is_empty());
                latest = Some(info);
                if complete {
                    break;
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    Ok(latest)
}
