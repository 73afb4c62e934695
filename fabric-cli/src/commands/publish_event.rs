//! `fabric publish-event TOPIC PAYLOAD`: one event, its payload as JSON.

use serde_json::Value;

use crate::cli::PublishEventArgs;
use crate::connect;
use crate::failure::Failure;

pub fn run(url: &str, args: PublishEventArgs) -> Result<(), Failure> {
    let payload: Value =
        serde_json::from_str(&args.payload).unwrap_or_else(|_| Value::String(args.payload.clone()));
    let fabric = connect::fabric(url, &args.domain, false)?;
    fabric.publish_event(&args.topic, &payload)?.wait()?;
    Ok(())
}
