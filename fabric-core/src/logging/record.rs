//! A log record as a subscriber receives it, and the levels amqp-fabric names.

use std::fmt;
use std::time::SystemTime;

use crate::stream::Headers;

/// A level as amqp-fabric's `level_name` header names it: Python's `logging` levels.
///
/// Ordered from least to most severe, so `level >= LogLevel::Warning` reads naturally.
/// Rust's [`log::Level`] maps onto it with [`From`]: `Trace` and `Debug` are `Debug` (Python
/// has nothing below `DEBUG`), `Warn` is `Warning`, and nothing is `Critical` (Rust has
/// nothing above `Error`; Python services send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `DEBUG`: Rust's `Debug` and `Trace`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`: Rust's `Warn`.
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL`: only Python services send it.
    Critical,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
    ];

    /// The name on the wire: `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }

    /// The level of a wire name; `None` for a name Python's `logging` does not define as
    /// one of these five (a custom level, or `NOTSET`).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|level| level.name() == name)
    }
}

impl From<log::Level> for LogLevel {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warning,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug | log::Level::Trace => LogLevel::Debug,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One log record from a service of the domain, as
/// [`Fabric::subscribe_logs`](crate::Fabric::subscribe_logs) hands it over.
///
/// Records from amqp-fabric's Python handler have only the service, the level and the
/// message; the other parts are then `None` (or 0 for [`dropped`](Self::dropped)).
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub(crate) level: Option<LogLevel>,
    pub(crate) level_name: String,
    pub(crate) rust_level: Option<log::Level>,
    pub(crate) service_type: Option<String>,
    pub(crate) service_id: Option<String>,
    pub(crate) message: String,
    pub(crate) target: Option<String>,
    pub(crate) module: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
    pub(crate) dropped: u64,
    pub(crate) timestamp: Option<SystemTime>,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
}

impl LogRecord {
    /// The level, from the `level_name` header; `None` when the name is not one of
    /// amqp-fabric's five (see [`level_name`](Self::level_name)).
    pub fn level(&self) -> Option<LogLevel> {
        self.level
    }

    /// The `level_name` header as sent (empty when missing).
    pub fn level_name(&self) -> &str {
        &self.level_name
    }

    /// The level the Rust sender logged at, which tells `Trace` from `Debug`; `None` for
    /// records from other senders.
    pub fn rust_level(&self) -> Option<log::Level> {
        self.rust_level
    }

    /// The sending service's type (`service_type` header).
    pub fn service_type(&self) -> Option<&str> {
        self.service_type.as_deref()
    }

    /// The sending service's id (`service_id` header).
    pub fn service_id(&self) -> Option<&str> {
        self.service_id.as_deref()
    }

    /// The formatted message, without the note about dropped records a sender may have
    /// added (that count is [`dropped`](Self::dropped)).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The Rust target the record was logged with (by default its module path).
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The module the record was made in.
    pub fn module(&self) -> Option<&str> {
        self.module.as_deref()
    }

    /// The source file the record was made in.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The line the record was made on.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The trace the record was made in (32 lowercase hex digits, `trace_id` header): the
    /// call being handled, so one request's records can be found across services; a trace
    /// of its own for a record made outside a handler; `None` for a Python peer's record.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// The span of that call (16 lowercase hex digits, `span_id` header).
    pub fn span_id(&self) -> Option<&str> {
        self.span_id.as_deref()
    }

    /// How many records the sender dropped just before this one, because its queue was full
    /// (0 for none). Those records are lost; this is how a reader learns of the gap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// When the record was made, to the second, if the sender said (fabric does; Python's
    /// handler does not).
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.timestamp
    }

    /// Every header of the message as received, for what the typed accessors do not cover.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body as received: the message as a JSON string, with the note about dropped
    /// records if there is one.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Display for LogRecord {
    /// `LEVEL type.id target: message`, the way a log tail prints a record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.level_name.is_empty() {
            "?"
        } else {
            self.level_name.as_str()
        };
        write!(
            f,
            "{level:<8} {}.{}",
            self.service_type().unwrap_or("?"),
            self.service_id().unwrap_or("?")
        )?;
        if let Some(target) = self.target() {
            write!(f, " {target}")?;
        }
        write!(f, ": {}", self.message)?;
        if self.dropped > 0 {
            write!(f, " [{} earlier records dropped]", self.dropped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_by_severity() {
        for level in LogLevel::ALL {
            assert_eq!(LogLevel::from_name(level.name()), Some(level));
        }
        assert_eq!(LogLevel::from_name("WARN"), None);
        assert!(LogLevel::Critical > LogLevel::Error);
        assert!(LogLevel::Debug < LogLevel::Info);
        assert_eq!(LogLevel::from(log::Level::Trace), LogLevel::Debug);
        assert_eq!(format!("{:<8}|", LogLevel::Info), "INFO    |");
    }
}
