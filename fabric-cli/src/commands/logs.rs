//! `fabric logs`: log records as readable lines (time, level, service, message).

use std::sync::mpsc;
use std::time::{Instant, SystemTime};

use fabric_core::{LogFilter, LogLevel, LogRecord};
use serde_json::json;

use crate::cli::LogsArgs;
use crate::commands::wants_more;
use crate::connect;
use crate::failure::Failure;
use crate::output::{self, Paint};
use crate::target;

pub fn run(url: &str, args: LogsArgs) -> Result<(), Failure> {
    let service = args.service.as_deref().map(target::parse).transpose()?;
    let domain = match (&service, &args.domain) {
        (Some(address), _) => address.domain().to_owned(),
        (None, Some(domain)) => domain.clone(),
        (None, None) => {
            return Err(Failure::usage(
                "which domain? give --domain D (or FABRIC_DOMAIN) or --service D/T/I",
            ))
        }
    };
    let level = level(&args.level)?;
    let mut filter = LogFilter::new().min_level(level);
    if let Some(address) = &service {
        filter = filter
            .service_type(address.service_type())
            .service_id(address.service_id());
    }
    let fabric = connect::fabric(url, &domain, false)?;
    let (tx, rx) = mpsc::channel();
    let _subscription = fabric.subscribe_logs(&filter, move |record| {
        let _ = tx.send(record);
    })?;
    eprintln!("fabric: printing the logs of domain {domain} at {level} and above");
    let paint = Paint::stdout();
    let deadline = (!args.follow).then(|| Instant::now() + args.wait);
    let mut printed = 0;
    while wants_more(printed, args.count) {
        let record = match deadline {
            None => match rx.recv() {
                Ok(record) => record,
                Err(_) => break,
            },
            Some(deadline) => {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                match rx.recv_timeout(left) {
                    Ok(record) => record,
                    Err(_) => break,
                }
            }
        };
        print(&record, args.json, &paint);
        printed += 1;
    }
    Ok(())
}

fn level(name: &str) -> Result<LogLevel, Failure> {
    let upper = name.to_ascii_uppercase();
    let upper = if upper == "WARN" {
        "WARNING".to_owned()
    } else {
        upper
    };
    LogLevel::from_name(&upper).ok_or_else(|| {
        Failure::usage(format!(
            "unknown level `{name}`: use debug, info, warning, error or critical"
        ))
    })
}

fn print(record: &LogRecord, json: bool, paint: &Paint) {
    let time = record.timestamp().unwrap_or_else(SystemTime::now);
    let service = format!(
        "{}/{}",
        record.service_type().unwrap_or("?"),
        record.service_id().unwrap_or("?")
    );
    if json {
        let value = json!({
            "time": output::unix_seconds(time),
            "level": record.level_name(),
            "service_type": record.service_type(),
            "service_id": record.service_id(),
            "target": record.target(),
            "message": record.message(),
            "trace_id": record.trace_id(),
        });
        println!("{value}");
        return;
    }
    let colour = match record.level() {
        Some(LogLevel::Critical | LogLevel::Error) => "31",
        Some(LogLevel::Warning) => "33",
        Some(LogLevel::Info) => "32",
        _ => "2",
    };
    let level = format!("{:<8}", record.level_name());
    println!(
        "{} {} {} {}",
        clock(time),
        paint.paint(colour, &level),
        service,
        record.message()
    );
}

/// `HH:MM:SS.mmm`, in UTC.
fn clock(time: SystemTime) -> String {
    let millis = output::unix_seconds(time).map_or(0, |s| (s * 1000.0) as u64);
    let secs = millis / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_clock() {
        assert_eq!(level("warning").unwrap(), LogLevel::Warning);
        assert_eq!(level("WARN").unwrap(), LogLevel::Warning);
        assert!(level("loud").is_err());
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004);
        assert_eq!(clock(time), "01:02:03.004");
    }
}
