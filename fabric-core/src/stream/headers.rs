//! Message headers: the filter keys of data streams.

use std::collections::BTreeMap;
use std::fmt;

use amiquip::{AmqpValue, FieldTable};

use crate::address::ServiceAddress;

/// One header value. RabbitMQ's headers exchange matches on type and value, so publish and
/// subscribe with the same kind of value (a string `"5"` does not match an integer `5`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HeaderValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A floating-point number.
    Float(f64),
}

impl HeaderValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Str(s) => Some(s),
            _ => None,
        }
    }

    fn to_amqp(&self) -> AmqpValue {
        match self {
            HeaderValue::Str(s) => AmqpValue::LongString(s.clone()),
            HeaderValue::Int(i) => AmqpValue::LongLongInt(*i),
            HeaderValue::Bool(b) => AmqpValue::Boolean(*b),
            HeaderValue::Float(f) => AmqpValue::Double(*f),
        }
    }

    /// Reads any AMQP value a peer may send; `None` for tables, arrays and the like.
    fn from_amqp(value: &AmqpValue) -> Option<HeaderValue> {
        Some(match value {
            AmqpValue::LongString(s) => HeaderValue::Str(s.clone()),
            AmqpValue::Boolean(b) => HeaderValue::Bool(*b),
            AmqpValue::ShortShortInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::ShortShortUInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::ShortInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::ShortUInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::LongInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::LongUInt(i) => HeaderValue::Int((*i).into()),
            AmqpValue::LongLongInt(i) => HeaderValue::Int(*i),
            AmqpValue::Timestamp(t) => HeaderValue::Int(i64::try_from(*t).ok()?),
            AmqpValue::Float(f) => HeaderValue::Float((*f).into()),
            AmqpValue::Double(f) => HeaderValue::Float(*f),
            _ => return None,
        })
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Str(s) => f.write_str(s),
            HeaderValue::Int(i) => write!(f, "{i}"),
            HeaderValue::Bool(b) => write!(f, "{b}"),
            HeaderValue::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(value: &str) -> Self {
        HeaderValue::Str(value.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(value: String) -> Self {
        HeaderValue::Str(value)
    }
}

impl From<i64> for HeaderValue {
    fn from(value: i64) -> Self {
        HeaderValue::Int(value)
    }
}

impl From<i32> for HeaderValue {
    fn from(value: i32) -> Self {
        HeaderValue::Int(value.into())
    }
}

impl From<bool> for HeaderValue {
    fn from(value: bool) -> Self {
        HeaderValue::Bool(value)
    }
}

impl From<f64> for HeaderValue {
    fn from(value: f64) -> Self {
        HeaderValue::Float(value)
    }
}

/// A set of headers, ordered by name.
///
/// ```
/// use fabric_core::Headers;
///
/// let headers = Headers::new().with("msg_type", "CUSTOMER_TRANSACTIONS").with("total", 55);
/// assert_eq!(headers.get_str("msg_type"), Some("CUSTOMER_TRANSACTIONS"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(BTreeMap<String, HeaderValue>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// These headers and one more (replacing a header of the same name).
    pub fn with(mut self, name: &str, value: impl Into<HeaderValue>) -> Headers {
        self.insert(name, value);
        self
    }

    /// Sets a header.
    pub fn insert(&mut self, name: &str, value: impl Into<HeaderValue>) {
        self.0.insert(name.to_owned(), value.into());
    }

    /// A header's value.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0.get(name)
    }

    /// A header's value if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(HeaderValue::as_str)
    }

    /// All headers, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn to_table(&self) -> FieldTable {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.to_amqp()))
            .collect()
    }

    pub(crate) fn from_table(table: &FieldTable) -> Headers {
        Headers(
            table
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), HeaderValue::from_amqp(v)?)))
                .collect(),
        )
    }
}

impl<K: AsRef<str>, V: Into<HeaderValue>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.into()))
                .collect(),
        )
    }
}

/// `headers` plus the publisher's `service_id` and `service_type`, as AMQP headers: what
/// amqp-fabric's `publish_data` adds (without changing the caller's headers, as it does).
pub(crate) fn stamped(address: &ServiceAddress, headers: &Headers) -> FieldTable {
    let mut table = headers.to_table();
    for (name, value) in [
        ("service_id", address.service_id()),
        ("service_type", address.service_type()),
    ] {
        table.insert(name.to_owned(), AmqpValue::LongString(value.to_owned()));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_the_amqp_table() {
        let headers = Headers::new()
            .with("s", "x")
            .with("i", 5)
            .with("b", true)
            .with("f", 1.5);
        assert_eq!(Headers::from_table(&headers.to_table()), headers);
    }
}
