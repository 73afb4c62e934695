//! One module per subcommand, each with a `run` that the main function calls.

pub mod call;
pub mod completions;
pub mod data;
pub mod describe;
pub mod events;
pub mod logs;
pub mod publish_data;
pub mod publish_event;
pub mod services;

use fabric_core::{HeaderValue, Headers};

use crate::failure::Failure;

/// Reads `K=V` headers; VALUE is a number or boolean when it reads as one, else a string.
pub fn headers(pairs: &[String]) -> Result<Headers, Failure> {
    let mut headers = Headers::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "header `{pair}` has no `=`: write NAME=VALUE"
            )));
        };
        let value = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Bool(b)) => HeaderValue::from(b),
            Ok(serde_json::Value::Number(n)) if n.is_i64() => {
                HeaderValue::from(n.as_i64().unwrap_or_default())
            }
            Ok(serde_json::Value::Number(n)) => HeaderValue::from(n.as_f64().unwrap_or_default()),
            _ => HeaderValue::from(value),
        };
        headers.insert(name, value);
    }
    Ok(headers)
}

/// A queue name of this process's own, for a subscription: `fabric-cli.{what}.{pid}.{n}`.
pub fn queue_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("fabric-cli.{what}.{}.{nanos}", std::process::id())
}

/// Whether `count` more items may still be printed after `printed`.
pub fn wants_more(printed: u64, count: Option<u64>) -> bool {
    count.is_none_or(|count| printed < count)
}
