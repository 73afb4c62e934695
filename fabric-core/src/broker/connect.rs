//! Opening an AMQP connection on a socket fabric set up itself.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use amiquip::{Auth, Connection, ConnectionOptions, ConnectionTuning};
use parking_lot::Mutex;

use super::auth::{refusal_of, AuthMechanism};
use super::handshake_tap::{Credentials, HandshakeTap, Observed, INFORMATION_PAD};
use super::tls_failure;
use super::url::BrokerUrl;
use crate::error::Refusal;
use crate::error::{Error, Result};

/// Connects to the broker with TCP_NODELAY set.
///
/// amiquip leaves Nagle's algorithm on, and with the broker's delayed ACKs every small
/// request/reply pair then waits about 40 ms. So the socket is opened here, tuned, wrapped in
/// TLS for `amqps://`, and handed to amiquip through a [`HandshakeTap`] (which makes a refused
/// login fail at once and keeps the broker's reason).
/// `name` goes into the connection's client properties, so `rabbitmqctl list_connections`
/// tells fabric's participants apart.
pub(crate) fn open(
    url: &BrokerUrl,
    name: &str,
    heartbeat: Duration,
    timeout: Duration,
) -> Result<Connection> {
    let connect_error = |reason: String| Error::Connect {
        url: url.display.clone(),
        reason,
    };
    let timeout = url.connect_timeout.unwrap_or(timeout);
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| connect_error(format!("cannot resolve {}: {e}", url.host)))?
        .collect();
    let mut last_error = connect_error(format!("{} resolves to no address", url.host));
    for addr in addrs {
        let stream = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => stream,
            Err(e) => {
                last_error = connect_error(format!("{addr}: {e}"));
                continue;
            }
        };
        stream
            .set_nodelay(true)
            .map_err(|e| connect_error(format!("cannot set TCP_NODELAY: {e}")))?;
        let heartbeat = url
            .heartbeat
            .unwrap_or_else(|| u16::try_from(heartbeat.as_secs()).unwrap_or(u16::MAX));
        // amiquip logs what it sends in the handshake, so it gets a placeholder password and
        // the tap puts the real one in.
        let (auth, credentials) = match url.auth {
            AuthMechanism::Plain => (
                Auth::Plain {
                    username: url.user.clone(),
                    password: Credentials::placeholder(&url.password),
                },
                Some(Credentials::plain(&url.user, &url.password)),
            ),
            AuthMechanism::External => (Auth::External, None),
        };
        let options = ConnectionOptions::<Auth>::default()
            .auth(auth)
            .virtual_host(url.vhost.clone())
            .heartbeat(heartbeat)
            .connection_timeout(Some(timeout))
            // The tap takes the pad out again (see handshake_tap.rs).
            .information(Some(format!("fabric {name}{INFORMATION_PAD}")));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let opened = match &url.tls {
            None => {
                let stream = mio::net::TcpStream::from_stream(stream).map_err(|e| {
                    connect_error(format!("cannot make the socket non-blocking: {e}"))
                })?;
                let tap = HandshakeTap::new(stream, credentials, Arc::clone(&observed));
                Connection::insecure_open_stream(tap, options, ConnectionTuning::default())
            }
            #[cfg(not(feature = "tls"))]
            Some(never) => match *never {},
            #[cfg(feature = "tls")]
            Some(tls) => {
                let deadline = std::time::Instant::now() + timeout;
                let socket = tls
                    .handshake(stream, deadline)
                    .map_err(|reason| Error::Tls {
                        url: url.display.clone(),
                        failure: tls_failure::classify(&reason),
                        reason,
                    })?;
                if !tls.verifies() {
                    log::warn!(
                        "fabric: TLS to {} does not verify the broker's certificate \
                         (verify_none): the connection is encrypted but not authenticated",
                        url.display
                    );
                }
                // Not insecure: the stream is TLS already, amiquip only does not know it.
                let tap = HandshakeTap::new(socket, credentials, Arc::clone(&observed));
                Connection::insecure_open_stream(tap, options, ConnectionTuning::default())
            }
        };
        let observed = observed.lock().clone();
        return opened.map_err(|e| handshake_error(url, e, &observed));
    }
    Err(last_error)
}

/// What a failed AMQP handshake means, from amiquip's error and what the tap saw.
fn handshake_error(url: &BrokerUrl, error: amiquip::Error, observed: &Observed) -> Error {
    let refused = |refusal: Refusal, message: String| Error::AccessRefused {
        url: url.display.clone(),
        refusal,
        message,
    };
    if observed.credentials_missing {
        return Error::Connect {
            url: url.display.clone(),
            reason: "fabric could not put the password into amiquip's login frame (was \
                     amiquip updated past 0.4?), so the broker got none"
                .to_owned(),
        };
    }
    // The broker's own words first: amiquip reports a close in answer to start-ok as an
    // unexpected frame.
    if let Some((code, text)) = &observed.close {
        if let Some(refusal) = refusal_of(*code) {
            return refused(refusal, text.clone());
        }
    }
    match error {
        amiquip::Error::ServerClosedConnection { code, message } if refusal_of(code).is_some() => {
            refused(refusal_of(code).unwrap_or(Refusal::Login), message)
        }
        // A broker that closes the socket after start-ok without a word refused the login.
        amiquip::Error::InvalidCredentials => refused(
            Refusal::Login,
            "the broker closed the connection after the login".to_owned(),
        ),
        amiquip::Error::UnsupportedAuthMechanism {
            available,
            requested,
        } => refused(
            Refusal::Mechanism,
            format!(
                "it offers {available}, not {requested}{}",
                if requested == AuthMechanism::External.sasl_name() {
                    " (EXTERNAL needs the rabbitmq_auth_mechanism_ssl plugin and \
                     auth_mechanisms in rabbitmq.conf)"
                } else {
                    ""
                }
            ),
        ),
        other => {
            let reason = other.to_string();
            if url.tls.is_some() && tls_failure::is_tls_message(&reason) {
                // TLS 1.3: the broker refuses a client certificate after fabric's side of
                // the handshake is done, so the alert arrives on the first read.
                return Error::Tls {
                    url: url.display.clone(),
                    failure: tls_failure::classify(&reason),
                    reason,
                };
            }
            let reason = if url.tls.is_none() && observed.spoke_tls {
                "the broker answered in TLS: this is a TLS port, so the URL must be amqps://"
                    .to_owned()
            } else {
                reason
            };
            Error::Connect {
                url: url.display.clone(),
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> BrokerUrl {
        BrokerUrl::parse("amqp://u:secret@h/%2f", None, None).unwrap()
    }

    fn refusal(error: Error) -> Option<Refusal> {
        match error {
            Error::AccessRefused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }

    #[test]
    fn handshake_failures_are_told_apart() {
        let none = Observed::default();
        let cases = [
            (amiquip::Error::InvalidCredentials, Some(Refusal::Login)),
            (
                amiquip::Error::ServerClosedConnection {
                    code: 530,
                    message: "NOT_ALLOWED - vhost x not found".to_owned(),
                },
                Some(Refusal::VirtualHost),
            ),
            (
                amiquip::Error::UnsupportedAuthMechanism {
                    available: "PLAIN AMQPLAIN".to_owned(),
                    requested: "EXTERNAL".to_owned(),
                },
                Some(Refusal::Mechanism),
            ),
            (amiquip::Error::UnexpectedSocketClose, None),
        ];
        for (error, expected) in cases {
            assert_eq!(refusal(handshake_error(&url(), error, &none)), expected);
        }
        // The broker's close, which amiquip reports as an unexpected frame, wins.
        let closed = Observed {
            close: Some((403, "ACCESS_REFUSED - Login was refused".to_owned())),
            ..Observed::default()
        };
        let error = handshake_error(&url(), amiquip::Error::FrameUnexpected, &closed);
        assert_eq!(refusal(error.clone()), Some(Refusal::Login));
        assert!(error.to_string().contains("Login was refused"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        // A TLS answer to a plain URL says what to write.
        let tls = Observed {
            spoke_tls: true,
            ..Observed::default()
        };
        let error = handshake_error(&url(), amiquip::Error::UnexpectedSocketClose, &tls);
        assert!(error.to_string().contains("amqps://"), "{error}");
    }
}
