//! The server side of amqp-fabric's own test suite, played by fabric: the Rust half of the
//! conformance suite (`examples/tests/conformance.rs`).
//!
//! A pytest plugin (`examples/tests/conformance/fabric_conformance.py`) starts one of these
//! for every Python `AmqBrokerConnector` that does something a server does, and drives it
//! over stdin and stdout: one JSON command per line in, one JSON reply per line out
//! (`{"ok": "..."}` or `{"error": "..."}`), in order. Nothing else is written to stdout.
//!
//! | command | what the peer does |
//! | --- | --- |
//! | `{"cmd": "start", "url", "domain", "service_type", "service_id", "keep_alive", "data_exchange", "discovery_exchange"}` | connects a [`Fabric`] as that participant (JSON codec, keep-alives every `keep_alive` seconds unless it is `null`); replies `ready` |
//! | `{"cmd": "serve", "methods": [...]}` | serves the Rust API whose methods are those the Python API object has (`health_check` is built in) |
//! | `{"cmd": "publish_data", "body_hex", "headers"}` | `Fabric::publish_data`, and waits for the broker's confirm |
//! | `{"cmd": "logging"}` | builds a [`RemoteLogger`] (declares the domain's log exchange) |
//! | `{"cmd": "log", "logger", "level", "levelno", "message"}` | ships one record of Python's through that logger |
//! | `{"cmd": "close"}` | closes gracefully (below), replies, exits |
//!
//! Closing, on `close` or when stdin ends, is fabric's graceful stop: the logger drains its
//! queue, the server stops taking calls and answers those in hand (`Server::close`; the
//! calls still queued go to the other instances of the clique), then the fabric closes,
//! saying goodbye before the connection goes. (amqp-fabric closes its connection under the
//! calls in hand, which the broker then redelivers; closing the fabric before its server
//! would do the same, but `Fabric::close` with a server still consuming sometimes fails.)
//!
//! Usage: `conformance_peer` (no arguments); it exits when its stdin closes.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use fabric_core::{
    fabric_service, Codec, Dispatch, Fabric, FabricConfig, Headers, RemoteLogger, Server,
    ServerBuilder,
};
use log::{Level, LevelFilter, Log, Record};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The exception `TestApi.something_wrong` raises in amqp-fabric's tests. A Python server
/// names it by the module of the test and the class (`test_amqp_broker_connector`), and the
/// test checks that name: the serde name is what fabric puts in the error reply's `type`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename = "test_amqp_broker_connector.SomeException")]
pub struct SomeException(String);

impl std::fmt::Display for SomeException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SomeException {}

/// `TestApi` of `tests/test_amqp_broker_connector.py`.
#[fabric_service]
pub trait TestApi {
    /// `x * y`.
    fn multiply(&self, x: i64, y: i64) -> i64;
    /// Always fails with [`SomeException`].
    fn something_wrong(&self) -> Result<(), SomeException>;
}

/// `TestApi` of `tests/test_high_availability.py`.
#[fabric_service]
pub trait HighAvailabilityApi {
    /// Takes about a second, saying on stderr when it starts and ends.
    fn print_response_service(&self, val: String);
}

/// The Rust implementation of both test APIs.
struct TestService;

impl TestApi for TestService {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }

    fn something_wrong(&self) -> Result<(), SomeException> {
        Err(SomeException("there is a problem here".to_owned()))
    }
}

impl HighAvailabilityApi for TestService {
    fn print_response_service(&self, val: String) {
        eprintln!("conformance_peer: {val} - start");
        // The work the Python test's method does (`await asyncio.sleep(1)`).
        std::thread::sleep(Duration::from_secs(1));
        eprintln!("conformance_peer: {val} - finish");
    }
}

/// One line of the plugin's.
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Start {
        url: String,
        domain: String,
        service_type: String,
        service_id: String,
        /// Seconds between keep-alives; `null` for none (amqp-fabric's `False`).
        keep_alive: Option<f64>,
        /// The name part of the data exchange, `{domain}.{data_exchange}`.
        data_exchange: String,
        discovery_exchange: String,
    },
    Serve {
        methods: Vec<String>,
    },
    PublishData {
        body_hex: String,
        headers: Map<String, Value>,
    },
    Logging,
    Log {
        logger: String,
        level: String,
        levelno: u32,
        message: String,
    },
    Close,
}

/// What the peer runs: each part appears with the command that starts it.
#[derive(Default)]
struct Peer {
    fabric: Option<Fabric>,
    server: Option<Server>,
    logger: Option<RemoteLogger>,
}

/// The reply to one command: a short word for the plugin, or what went wrong.
type Reply = Result<String, String>;

fn main() {
    let mut peer = Peer::default();
    let mut stdout = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (reply, last) = match serde_json::from_str::<Command>(&line) {
            Ok(Command::Close) => (peer.close(), true),
            Ok(command) => (peer.run(command), false),
            Err(e) => (Err(format!("not a command ({e}): {line}")), false),
        };
        let reply = match reply {
            Ok(ok) => json!({ "ok": ok }),
            Err(error) => json!({ "error": error }),
        };
        // The plugin is gone if its end of the pipe is: then so is the reason to run.
        if writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        if last {
            return;
        }
    }
    if let Err(e) = peer.close() {
        eprintln!("conformance_peer: {e}");
    }
}

impl Peer {
    fn run(&mut self, command: Command) -> Reply {
        match command {
            Command::Start {
                url,
                domain,
                service_type,
                service_id,
                keep_alive,
                data_exchange,
                discovery_exchange,
            } => {
                if self.fabric.is_some() {
                    return Err("already started".to_owned());
                }
                let mut config = FabricConfig::new(&url, &domain, &service_type, &service_id)
                    .codec(Codec::Json)
                    .data_exchange(&data_exchange)
                    .discovery_exchange(&discovery_exchange);
                if let Some(seconds) = keep_alive {
                    let interval = Duration::try_from_secs_f64(seconds)
                        .map_err(|e| format!("keep_alive {seconds}: {e}"))?;
                    config = config.keep_alive(interval);
                }
                let fabric = Fabric::connect(config).map_err(|e| format!("connect: {e}"))?;
                self.fabric = Some(fabric);
                Ok("ready".to_owned())
            }
            Command::Serve { methods } => self.serve(&methods),
            Command::PublishData { body_hex, headers } => {
                let body = from_hex(&body_hex)?;
                let headers = to_headers(&headers)?;
                self.fabric()?
                    .publish_data(&body, &headers)
                    .and_then(|receipt| receipt.wait())
                    .map_err(|e| format!("publish_data: {e}"))?;
                Ok("published".to_owned())
            }
            Command::Logging => {
                if self.logger.is_some() {
                    return Ok("logging".to_owned());
                }
                // Python's handler has filtered by level already: ship what comes.
                let logger = RemoteLogger::builder(self.fabric()?)
                    .level(LevelFilter::Trace)
                    .build()
                    .map_err(|e| format!("remote logger: {e}"))?;
                self.logger = Some(logger);
                Ok("logging".to_owned())
            }
            Command::Log {
                logger,
                level,
                levelno,
                message,
            } => {
                let remote = self.logger.as_ref().ok_or("no `logging` command yet")?;
                remote.log(
                    &Record::builder()
                        .args(format_args!("{message}"))
                        .level(rust_level(levelno))
                        .target(&logger)
                        .build(),
                );
                Ok(format!("queued {level}"))
            }
            Command::Close => self.close(),
        }
    }

    fn fabric(&self) -> Result<&Fabric, String> {
        self.fabric
            .as_ref()
            .ok_or_else(|| "no `start` command yet".to_owned())
    }

    /// Serves the Rust API with the Python API's methods.
    fn serve(&mut self, methods: &[String]) -> Reply {
        if self.server.is_some() {
            return Err("already serving".to_owned());
        }
        let wanted: BTreeSet<&str> = methods
            .iter()
            .map(String::as_str)
            .filter(|m| *m != "health_check")
            .collect();
        let test_api = TestApiServer::new(TestService);
        let high_availability = HighAvailabilityApiServer::new(TestService);
        let (server, service) = if served(&test_api) == wanted {
            self.start(test_api)?
        } else if served(&high_availability) == wanted {
            self.start(high_availability)?
        } else {
            return Err(format!(
                "no Rust API has the methods {wanted:?} (known: {:?}, {:?})",
                served(&test_api),
                served(&high_availability)
            ));
        };
        self.server = Some(server);
        Ok(format!("serving {service}"))
    }

    /// One worker with a prefetch of one: how amqp-fabric serves (one channel, prefetch 1),
    /// so calls spread over a clique as they do between Python servers.
    fn start<D: Dispatch>(
        &self,
        builder: ServerBuilder<D>,
    ) -> Result<(Server, &'static str), String> {
        builder
            .workers(1)
            .prefetch(1)
            .serve(self.fabric()?)
            .map(|server| (server, D::SERVICE))
            .map_err(|e| format!("serve {}: {e}", D::SERVICE))
    }

    /// Drains the logger, shuts the server down, then closes the fabric (a goodbye, then
    /// the connection).
    fn close(&mut self) -> Reply {
        let started = Instant::now();
        let mut problems = Vec::new();
        if let Some(logger) = self.logger.take() {
            if !logger.flush_within(Duration::from_secs(5)) {
                problems.push(format!("{} log records not shipped", logger.queued()));
            }
            if let Err(e) = logger.close() {
                problems.push(format!("logger: {e}"));
            }
        }
        if let Some(server) = self.server.take() {
            if let Err(e) = server.close() {
                problems.push(format!("server shutdown: {e}"));
            }
        }
        if let Some(fabric) = self.fabric.take() {
            if let Err(e) = fabric.close() {
                problems.push(format!("close: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(format!("closed in {} ms", started.elapsed().as_millis()))
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The methods a server built by `builder` serves, besides `health_check`.
fn served<D: Dispatch>(_builder: &ServerBuilder<D>) -> BTreeSet<&'static str> {
    D::METHODS.iter().copied().collect()
}

/// The `log` level of a Python level number. Rust has nothing above `Error`, so Python's
/// `CRITICAL` arrives as `ERROR`.
fn rust_level(levelno: u32) -> Level {
    match levelno {
        40.. => Level::Error,
        30.. => Level::Warn,
        20.. => Level::Info,
        10.. => Level::Debug,
        _ => Level::Trace,
    }
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    hex.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|pair| pair.len() == 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not a hex byte at {}", 2 * i))
        })
        .collect()
}

/// Python's headers dict as fabric's headers: strings, integers, booleans and floats.
fn to_headers(headers: &Map<String, Value>) -> Result<Headers, String> {
    let mut out = Headers::new();
    for (name, value) in headers {
        match value {
            Value::String(s) => out.insert(name, s.as_str()),
            Value::Bool(b) => out.insert(name, *b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => out.insert(name, i),
                (None, Some(f)) => out.insert(name, f),
                _ => return Err(format!("header {name}: {n} fits no AMQP number")),
            },
            other => return Err(format!("header {name}: {other} is not a header value")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bodies() {
        assert_eq!(from_hex("7b7D").unwrap(), b"{}");
        assert_eq!(from_hex("").unwrap(), b"");
        assert!(from_hex("7b7").unwrap_err().contains("at 2"));
        assert!(from_hex("zz").is_err());
    }

    #[test]
    fn python_headers() {
        let headers = serde_json::from_str(r#"{"s": "v", "i": 6, "f": 0.5, "b": true}"#).unwrap();
        let headers = to_headers(&headers).unwrap();
        assert_eq!(headers.get_str("s"), Some("v"));
        assert_eq!(headers.get("i"), Some(&6i64.into()));
        assert_eq!(headers.get("f"), Some(&0.5f64.into()));
        assert_eq!(headers.get("b"), Some(&true.into()));
        let nested = serde_json::from_str(r#"{"n": {"a": 1}}"#).unwrap();
        assert!(to_headers(&nested).is_err());
    }

    #[test]
    fn python_levels() {
        assert_eq!(rust_level(50), Level::Error);
        assert_eq!(rust_level(25), Level::Info);
        assert_eq!(rust_level(10), Level::Debug);
        assert_eq!(rust_level(5), Level::Trace);
    }
}
