//! `fabric data`: follow a domain's data stream, bodies decoded as JSON where possible.

use fabric_core::Message;
use serde_json::{json, Map, Value};

use crate::cli::DataArgs;
use crate::commands::{headers, queue_name, wants_more};
use crate::connect;
use crate::failure::Failure;
use crate::output;

pub fn run(url: &str, args: DataArgs) -> Result<(), Failure> {
    let filter = headers(&args.headers)?;
    let fabric = connect::fabric(url, &args.domain, false)?;
    let inbox = fabric
        .data_subscriber(&queue_name("data"))
        .headers(&filter)
        .inbox()?;
    eprintln!(
        "fabric: following the data stream of domain {}",
        args.domain
    );
    let mut printed = 0;
    while wants_more(printed, args.count) {
        let message = inbox.recv()?;
        print(&message, None, args.json);
        printed += 1;
    }
    Ok(())
}

/// One message: `[topic] type/id k=v ... body`, or a JSON object.
pub fn print(message: &Message, topic: Option<&str>, json: bool) {
    let body = output::body_value(message.body());
    let publisher = format!(
        "{}/{}",
        message.publisher_type().unwrap_or("?"),
        message.publisher_id().unwrap_or("?")
    );
    let shown: Vec<(&str, String)> = message
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(*name, "service_id" | "service_type" | "traceparent"))
        .map(|(name, value)| (name, value.to_string()))
        .collect();
    if json {
        let headers: Map<String, Value> = shown
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::String(value)))
            .collect();
        let mut value = json!({
            "publisher": publisher,
            "headers": headers,
            "body": body,
        });
        if let Some(topic) = topic {
            value["topic"] = json!(topic);
        }
        println!("{value}");
        return;
    }
    let mut line = String::new();
    if let Some(topic) = topic {
        line.push_str(topic);
        line.push(' ');
    }
    line.push_str(&publisher);
    for (name, value) in shown {
        line.push_str(&format!(" {name}={value}"));
    }
    println!("{line} {body}");
}
