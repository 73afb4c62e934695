//! Broker URLs: parsed here because fabric opens the socket itself (to set TCP_NODELAY), and
//! with them what the connection needs from the configuration (TLS, the login mechanism).

use std::fmt;
use std::time::Duration;

use url::Url;

use super::auth::AuthMechanism;
use super::tls::{TlsConfig, TlsParams, TlsSetup};
use crate::error::{Error, Result};

/// The parts of an `amqp://` or `amqps://` URL that a connection needs.
#[derive(Clone)]
pub(crate) struct BrokerUrl {
    /// For `amqps://`: the loaded certificates and the name to verify.
    pub tls: Option<TlsSetup>,
    pub host: String,
    pub port: u16,
    pub auth: AuthMechanism,
    pub user: String,
    pub password: String,
    pub vhost: String,
    pub heartbeat: Option<u16>,
    pub connect_timeout: Option<Duration>,
    /// The URL with the password masked, for messages and logs.
    pub display: String,
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The masked form only: no password in any debug output.
        f.debug_tuple("BrokerUrl").field(&self.display).finish()
    }
}

impl BrokerUrl {
    /// Parses a URL as the RabbitMQ URI spec reads it: `guest`/`guest` when no user is given,
    /// vhost `/` when the path is empty, the query parameters `heartbeat`,
    /// `connection_timeout` (ms), `auth_mechanism` and, for `amqps`, the TLS ones; the files
    /// those name are loaded and checked here. `tls` and `auth` are the configuration's
    /// settings, which the URL's parameters override.
    pub fn parse(
        raw: &str,
        tls_config: Option<&TlsConfig>,
        auth: Option<AuthMechanism>,
    ) -> Result<BrokerUrl> {
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
        let host = match url.host_str() {
            None | Some("") => "localhost".to_owned(),
            Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        };
        let port = url.port().unwrap_or(if tls { 5671 } else { 5672 });
        let decode =
            |s: &str| percent_decode(s).map_err(|_| invalid("bad percent-encoding".to_owned()));
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
        let mut url_auth = None;
        let mut tls_params = TlsParams::default();
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
                "auth_mechanism" => {
                    url_auth = Some(AuthMechanism::from_query(&value).ok_or_else(|| {
                        invalid(format!(
                            "auth_mechanism {value:?} is not `plain` or `external`"
                        ))
                    })?)
                }
                other => {
                    if !tls_params.take(other, &value).map_err(&invalid)? {
                        return Err(invalid(format!(
                            "query parameter `{other}` is not supported (use heartbeat, \
                             connection_timeout, auth_mechanism, {})",
                            TlsParams::NAMES
                        )));
                    }
                }
            }
        }
        let auth = url_auth.or(auth).unwrap_or_default();
        if !tls {
            let plain = "this URL is amqp://, which is not encrypted: write amqps:// and the \
                         broker's TLS port";
            if let Some(parameter) = tls_params.first_given() {
                return Err(invalid(format!("`{parameter}` is for TLS, but {plain}")));
            }
            if tls_config.is_some() {
                return Err(invalid(format!("FabricConfig::tls is set, but {plain}")));
            }
            if auth == AuthMechanism::External {
                return Err(invalid(format!(
                    "EXTERNAL login takes the user from a TLS client certificate, but {plain}"
                )));
            }
        }
        let (user, password) = match auth {
            AuthMechanism::External => {
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "with EXTERNAL login the user comes from the client certificate: \
                         remove the user name and password from the URL"
                            .to_owned(),
                    ));
                }
                (String::new(), String::new())
            }
            AuthMechanism::Plain if url.username().is_empty() => {
                ("guest".to_owned(), "guest".to_owned())
            }
            AuthMechanism::Plain => (
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            ),
        };
        let tls = match tls {
            true => Some(TlsSetup::load(
                &tls_params,
                tls_config,
                &host,
                auth,
                &masked,
            )?),
            false => None,
        };
        Ok(BrokerUrl {
            tls,
            host,
            port,
            auth,
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
        let url = BrokerUrl::parse("amqp://", None, None).unwrap();
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
        let url = BrokerUrl::parse(
            "amqp://u%40x:p%2fw@10.0.0.1:5673/v%2fh?heartbeat=5",
            None,
            None,
        )
        .unwrap();
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
            let err = BrokerUrl::parse(raw, None, None).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{raw}: {err}");
            if raw.contains('@') {
                assert!(!err.to_string().contains("secret"), "{err}");
            }
        }
    }

    #[test]
    fn tls_parameters_are_checked_before_any_connection() {
        let cases = [
            ("amqp://h/?cacertfile=/ca.pem", "`cacertfile` is for TLS"),
            ("amqp://h/?auth_mechanism=external", "EXTERNAL"),
            ("amqps://h/?verify=maybe", "verify_peer"),
            ("amqps://h/?auth_mechanism=kerberos", "auth_mechanism"),
            (
                "amqps://u:secret@h/?auth_mechanism=external",
                "remove the user name and password",
            ),
            ("amqps://h/?frame_max=1", "cacertfile"),
        ];
        for (raw, expected) in cases {
            let err = BrokerUrl::parse(raw, None, None).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{raw}: {err:?}");
            assert!(err.to_string().contains(expected), "{raw}: {err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let tls = TlsConfig::new();
        let err = BrokerUrl::parse("amqp://h/", Some(&tls), None).unwrap_err();
        assert!(err.to_string().contains("FabricConfig::tls"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn unreadable_files_and_missing_certificates_name_the_parameter() {
        let err =
            BrokerUrl::parse("amqps://h/?cacertfile=/no/such/ca.pem", None, None).unwrap_err();
        match &err {
            Error::InvalidTls { setting, reason } => {
                assert_eq!(setting, "cacertfile=/no/such/ca.pem");
                assert!(reason.contains("cannot read"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let err = BrokerUrl::parse("amqps://h/?certfile=/c.pem", None, None).unwrap_err();
        assert!(err.to_string().contains("keyfile"), "{err}");
        let err = BrokerUrl::parse("amqps://h/?auth_mechanism=external", None, None).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidTls { setting, .. } if setting == "auth_mechanism=external"),
            "{err:?}"
        );
        let url = BrokerUrl::parse("amqps://u:p@h/", None, None).unwrap();
        assert_eq!((url.port, url.tls.is_some()), (5671, true));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn amqps_without_the_feature_says_what_to_enable() {
        let err = BrokerUrl::parse("amqps://u:secret@h/", None, None).unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("features = [\"tls\"]"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
