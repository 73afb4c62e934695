//! Broker URLs: parsed here because fabric opens the socket itself (to set TCP_NODELAY).

use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// The parts of an `amqp://` or `amqps://` URL that a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: String,
    pub heartbeat: Option<u16>,
    pub connect_timeout: Option<Duration>,
    /// The URL with the password masked, for messages and logs.
    pub display: String,
}

impl BrokerUrl {
    /// Parses a URL as the RabbitMQ URI spec reads it: `guest`/`guest` when no user is given,
    /// vhost `/` when the path is empty, `heartbeat` and `connection_timeout` (ms) queries.
    pub fn parse(raw: &str) -> Result<BrokerUrl> {
        let masked = mask_password(raw);
        let invalid = |reason: String| Error::InvalidUrl {
            url: masked.clone(),
            reason,
        };
        let url = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            other => {
                return Err(invalid(format!(
                    "scheme `{other}` is not `amqp` or `amqps`"
                )))
            }
        };
        if tls && !cfg!(feature = "tls") {
            return Err(invalid(
                "`amqps` needs fabric-core's `tls` feature".to_owned(),
            ));
        }
        let host = match url.host_str() {
            None | Some("") => "localhost".to_owned(),
            Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        };
        let port = url.port().unwrap_or(if tls { 5671 } else { 5672 });
        let decode =
            |s: &str| percent_decode(s).map_err(|_| invalid("bad percent-encoding".to_owned()));
        let (user, password) = if url.username().is_empty() {
            ("guest".to_owned(), "guest".to_owned())
        } else {
            (
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            )
        };
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        if path.contains('/') {
            return Err(invalid(format!(
                "the path {path:?} has more than one segment; it must be the vhost, with `/` written as %2f"
            )));
        }
        let vhost = if path.is_empty() {
            "/".to_owned()
        } else {
            decode(path)?
        };
        let mut heartbeat = None;
        let mut connect_timeout = None;
        for (key, value) in url.query_pairs() {
            let number = |what: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("{what} {value:?} is not a whole number")))
            };
            match key.as_ref() {
                "heartbeat" => {
                    heartbeat = Some(u16::try_from(number("heartbeat")?).map_err(|_| {
                        invalid(format!("heartbeat {value} is larger than 65535 s"))
                    })?)
                }
                "connection_timeout" => {
                    connect_timeout = Some(Duration::from_millis(number("connection_timeout")?))
                }
                other => {
                    return Err(invalid(format!(
                        "query parameter `{other}` is not supported (use heartbeat or connection_timeout)"
                    )))
                }
            }
        }
        Ok(BrokerUrl {
            tls,
            host,
            port,
            user,
            password,
            vhost,
            heartbeat,
            connect_timeout,
            display: masked,
        })
    }
}

/// The URL with any password replaced by `***`, so it can go into errors and logs.
pub(crate) fn mask_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        // Unparseable: keep the scheme and host part only if there is no `@`.
        Err(_) => match raw.rfind('@') {
            Some(at) => format!("***{}", &raw[at..]),
            None => raw.to_owned(),
        },
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_rabbitmq_uri_spec() {
        let url = BrokerUrl::parse("amqp://").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.user.as_str(),
                url.vhost.as_str()
            ),
            ("localhost", 5672, "guest", "/")
        );
    }

    #[test]
    fn parts_are_decoded() {
        let url = BrokerUrl::parse("amqp://u%40x:p%2fw@10.0.0.1:5673/v%2fh?heartbeat=5").unwrap();
        assert_eq!(url.user, "u@x");
        assert_eq!(url.password, "p/w");
        assert_eq!(url.host, "10.0.0.1");
        assert_eq!(url.port, 5673);
        assert_eq!(url.vhost, "v/h");
        assert_eq!(url.heartbeat, Some(5));
        assert!(!url.display.contains("p%2fw"), "{}", url.display);
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        for raw in [
            "http://guest:secret@localhost",
            "amqp://guest:secret@localhost/a/b",
            "amqp://guest:secret@localhost/?heartbeat=x",
            "amqp://guest:secret@localhost/?frame_max=1",
            "not a url secret",
        ] {
            let err = BrokerUrl::parse(raw).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{raw}: {err}");
            if raw.contains('@') {
                assert!(!err.to_string().contains("secret"), "{err}");
            }
        }
    }
}
