//! Keep-alives and goodbyes on the wire, and what the registry declares on the broker.
//!
//! The headers are amqp-fabric's, so a Python listener files a Rust participant under the
//! right name; the body is a JSON object, which Python reads with `json.loads` and keeps.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amiquip::{AmqpProperties, AmqpValue, ExchangeType, FieldTable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ServiceInfo;
use crate::address::ServiceAddress;
use crate::broker::consumer::Incoming;
use crate::broker::topology::{string_table, Declaration};
use crate::codec::JSON_CONTENT_TYPE;
use crate::contract::Contract;

/// The header that tells discovery messages apart, and its values.
const MSG_TYPE: &str = "msg_type";
/// amqp-fabric's keep-alive: "I am here".
const KEEP_ALIVE: &str = "keep_alive";
/// fabric's own "I am leaving"; Python listeners, bound to `keep_alive` only, never see it.
const GOODBYE: &str = "goodbye";
/// fabric's own "my servers changed": a keep-alive for fabric listeners only.
const UPDATE: &str = "update";
const SERVICE_DOMAIN: &str = "service_domain";
const SERVICE_TYPE: &str = "service_type";
const SERVICE_ID: &str = "service_id";
/// fabric's own header: the participant's version, for Python peers, whose
/// `subscribe_service_keepalives` callbacks see the headers but not the body.
const SERVICE_VERSION: &str = "service_version";

/// The discovery messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// "I am here", on every beat: amqp-fabric's, heard by every listener.
    KeepAlive,
    /// "I am here, and my servers changed", at once: heard by fabric listeners only.
    Update,
    /// "I am leaving": heard by fabric listeners only.
    Goodbye,
}

impl Kind {
    fn header(self) -> &'static str {
        match self {
            Kind::KeepAlive => KEEP_ALIVE,
            Kind::Update => UPDATE,
            Kind::Goodbye => GOODBYE,
        }
    }
}

/// The discovery exchange exactly as amqp-fabric declares it (headers, durable, not
/// auto-deleted); with other flags the broker refuses with PRECONDITION_FAILED.
pub(crate) fn discovery_exchange(name: &str) -> Declaration {
    Declaration::Exchange {
        name: name.to_owned(),
        kind: ExchangeType::Headers,
        durable: true,
        auto_delete: false,
    }
}

/// The listener's exchange, exclusive queue, and its bindings: keep-alives bound as
/// amqp-fabric binds them (`x-match=all, msg_type=keep_alive`), updates and goodbyes.
pub(crate) fn listener_topology(exchange: &str, queue: &str) -> Vec<Declaration> {
    let mut declarations = vec![
        discovery_exchange(exchange),
        Declaration::Queue {
            name: queue.to_owned(),
            durable: false,
            auto_delete: true,
            exclusive: true,
            arguments: FieldTable::default(),
        },
    ];
    for kind in [Kind::KeepAlive, Kind::Update, Kind::Goodbye] {
        declarations.push(Declaration::Binding {
            queue: queue.to_owned(),
            exchange: exchange.to_owned(),
            routing_key: String::new(),
            arguments: string_table([("x-match", "all"), (MSG_TYPE, kind.header())]),
        });
    }
    declarations
}

/// The properties of a keep-alive or goodbye from `address` at `version`: amqp-fabric's
/// headers and the version, a JSON body, not persistent.
pub(crate) fn properties(
    kind: Kind,
    address: &ServiceAddress,
    version: &str,
    now: SystemTime,
) -> AmqpProperties {
    let headers = string_table([
        (MSG_TYPE, kind.header()),
        (SERVICE_DOMAIN, address.domain()),
        (SERVICE_TYPE, address.service_type()),
        (SERVICE_ID, address.service_id()),
        (SERVICE_VERSION, version),
    ]);
    AmqpProperties::default()
        .with_content_type(JSON_CONTENT_TYPE.to_owned())
        .with_headers(headers)
        .with_delivery_mode(1)
        .with_timestamp(unix_seconds(now) as u64)
}

/// The body of a fabric keep-alive (and goodbye). Field names are the wire format: readers
/// in other languages depend on them.
#[derive(Debug, Serialize)]
pub(crate) struct Announcement<'a> {
    /// The fabric-core version that sent it: tells fabric peers from others.
    pub fabric: &'static str,
    pub instance: &'a str,
    pub version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
    pub pid: u32,
    /// Unix time in seconds, with a fraction.
    pub started_at: f64,
    /// Seconds between keep-alives.
    pub keep_alive: f64,
    pub methods: Vec<&'static str>,
    pub in_flight: usize,
    pub workers: usize,
    /// The same load per server, for a participant that runs several.
    pub servers: Vec<ServerAnnouncement>,
    /// The methods of its servers as their traits wrote them; absent when a server has none
    /// (a hand-written dispatcher) or it serves nothing. amqp-fabric ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<Contract>,
    /// [`Contract::hash`] of `contract`, as 16 hexadecimal digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_hash: Option<String>,
}

/// One server's part of an [`Announcement`].
#[derive(Debug, Serialize)]
pub(crate) struct ServerAnnouncement {
    pub service: &'static str,
    pub methods: Vec<&'static str>,
    pub workers: usize,
    pub in_flight: usize,
    /// The hash of this server's contract, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_hash: Option<String>,
}

/// Seconds since the Unix epoch, with a fraction; 0 for a clock before 1970.
pub(crate) fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A discovery message as the listener understood it.
#[derive(Debug)]
pub(crate) struct Heard {
    pub kind: Kind,
    pub info: ServiceInfo,
}

/// Reads a keep-alive or goodbye. The headers must name a valid address; the body is read
/// leniently: empty (amqp-fabric), a JSON object (fabric), or anything else (kept as `Null`),
/// and each known field is taken only when it has the expected type.
pub(crate) fn parse(incoming: &Incoming, heard_at: Instant) -> Result<Heard, String> {
    let headers = incoming
        .properties
        .headers()
        .as_ref()
        .ok_or("a discovery message without headers")?;
    let text = |name: &str| -> Result<String, String> {
        match headers.get(name) {
            Some(AmqpValue::LongString(s)) => Ok(s.clone()),
            Some(AmqpValue::ByteArray(b)) => {
                String::from_utf8(b.clone()).map_err(|_| format!("header {name} is not UTF-8"))
            }
            Some(other) => Err(format!("header {name} is not a string: {other:?}")),
            None => Err(format!("a discovery message without header {name}")),
        }
    };
    let kind = match text(MSG_TYPE)?.as_str() {
        KEEP_ALIVE => Kind::KeepAlive,
        UPDATE => Kind::Update,
        GOODBYE => Kind::Goodbye,
        other => return Err(format!("unknown discovery message type {other:?}")),
    };
    let address = ServiceAddress::announced(
        &text(SERVICE_DOMAIN)?,
        &text(SERVICE_TYPE)?,
        &text(SERVICE_ID)?,
    )
    .map_err(|e| e.to_string())?;
    let raw = if incoming.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&incoming.body).unwrap_or_else(|e| {
            log::debug!("fabric: a keep-alive of {address} has a body that is not JSON: {e}");
            Value::Null
        })
    };
    let string = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
    let count = |name: &str| {
        raw.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let info = ServiceInfo {
        instance: string("instance"),
        // The body's, else the header's: a peer of another language may send either.
        version: string("version").or_else(|| text(SERVICE_VERSION).ok()),
        host: string("host"),
        pid: raw
            .get("pid")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        started_at: raw
            .get("started_at")
            .and_then(Value::as_f64)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .map(|since| UNIX_EPOCH + since),
        methods: raw.get("methods").and_then(Value::as_array).map(|methods| {
            methods
                .iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        }),
        in_flight: count("in_flight"),
        workers: count("workers"),
        contract: raw
            .get("contract")
            .and_then(|contract| Contract::deserialize(contract).ok()),
        address,
        last_heard: heard_at,
        raw,
    };
    Ok(Heard { kind, info })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(headers: &[(&str, &str)], body: &[u8]) -> Incoming {
        Incoming {
            body: body.to_vec(),
            properties: AmqpProperties::default()
                .with_headers(string_table(headers.iter().copied())),
            routing_key: String::new(),
            redelivered: false,
        }
    }

    const PYTHON_HEADERS: [(&str, &str); 4] = [
        ("msg_type", "keep_alive"),
        ("service_domain", "shop"),
        ("service_type", "calc"),
        ("service_id", "py1"),
    ];

    #[test]
    fn an_empty_python_keep_alive_is_an_address_and_nothing_more() {
        let heard = parse(&incoming(&PYTHON_HEADERS, b""), Instant::now()).unwrap();
        assert_eq!(heard.kind, Kind::KeepAlive);
        assert_eq!(heard.info.address.fqn(), "shop.calc.py1");
        assert_eq!(heard.info.raw, Value::Null);
        assert_eq!(heard.info.contract(), None);
        assert_eq!(
            (heard.info.version, heard.info.pid, heard.info.methods),
            (None, None, None)
        );
    }

    #[test]
    fn a_fabric_announcement_reads_back() {
        let started = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let announcement = Announcement {
            fabric: "0.1.0",
            instance: "abc",
            version: "1.2.3",
            host: Some("box"),
            pid: 42,
            started_at: unix_seconds(started),
            keep_alive: 1.0,
            methods: vec!["multiply", "health_check"],
            in_flight: 2,
            workers: 8,
            servers: vec![],
            contract: Some(
                Contract::new("Calc").method(
                    crate::contract::MethodContract::new("multiply")
                        .param("x", "i64")
                        .param("y", "i64")
                        .returns("i64"),
                ),
            ),
            contract_hash: None,
        };
        let body = serde_json::to_vec(&announcement).unwrap();
        let mut headers = PYTHON_HEADERS;
        headers[0].1 = "goodbye";
        let heard = parse(&incoming(&headers, &body), Instant::now()).unwrap();
        assert_eq!(heard.kind, Kind::Goodbye);
        let info = heard.info;
        assert_eq!(info.instance.as_deref(), Some("abc"));
        assert_eq!(info.version.as_deref(), Some("1.2.3"));
        assert_eq!(info.host.as_deref(), Some("box"));
        assert_eq!(info.pid, Some(42));
        let skew = info
            .started_at
            .unwrap()
            .duration_since(started)
            .unwrap_or_default();
        assert!(skew < Duration::from_millis(1), "{skew:?}");
        assert_eq!(
            info.methods,
            Some(vec!["multiply".to_owned(), "health_check".to_owned()])
        );
        assert_eq!((info.in_flight, info.workers), (Some(2), Some(8)));
        assert_eq!(info.raw["fabric"], "0.1.0");
        let contract = info.contract().expect("the announced contract");
        assert_eq!(
            contract.methods()[0].to_string(),
            "multiply(x: i64, y: i64) -> i64"
        );
        assert_eq!(info.contract_hash(), Some(contract.hash()));
    }

    #[test]
    fn a_version_comes_from_the_body_or_else_the_header() {
        let mut headers = PYTHON_HEADERS.to_vec();
        headers.push(("service_version", "1.4.0"));
        let heard = parse(&incoming(&headers, b""), Instant::now()).unwrap();
        assert_eq!(heard.info.version.as_deref(), Some("1.4.0"));
        let heard = parse(
            &incoming(&headers, br#"{"version": "2.0.0"}"#),
            Instant::now(),
        )
        .unwrap();
        assert_eq!(heard.info.version.as_deref(), Some("2.0.0"));
        let address = ServiceAddress::new("shop", "calc", "c1").unwrap();
        let properties = properties(Kind::KeepAlive, &address, "3.1.0", SystemTime::now());
        let sent = properties.headers().as_ref().unwrap();
        assert_eq!(
            sent.get("service_version"),
            Some(&AmqpValue::LongString("3.1.0".to_owned()))
        );
    }

    #[test]
    fn wrong_fields_are_unknown_and_bad_headers_are_refused() {
        let heard = parse(
            &incoming(
                &PYTHON_HEADERS,
                br#"{"pid": "x", "methods": 3, "version": "2"}"#,
            ),
            Instant::now(),
        )
        .unwrap();
        assert_eq!((heard.info.pid, heard.info.methods), (None, None));
        assert_eq!(heard.info.version.as_deref(), Some("2"));
        let not_json = parse(&incoming(&PYTHON_HEADERS, b"\xff"), Instant::now()).unwrap();
        assert_eq!(not_json.info.raw, Value::Null);

        let mut bad = PYTHON_HEADERS;
        bad[3].1 = "no spaces allowed";
        assert!(parse(&incoming(&bad, b""), Instant::now()).is_err());
        assert!(parse(&incoming(&PYTHON_HEADERS[..3], b""), Instant::now()).is_err());
        bad = PYTHON_HEADERS;
        bad[0].1 = "hello";
        assert!(parse(&incoming(&bad, b""), Instant::now()).is_err());
    }
}
