//! Opening an AMQP connection on a socket fabric set up itself.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use amiquip::{Auth, Connection, ConnectionOptions, ConnectionTuning};

use super::url::BrokerUrl;
use crate::error::{Error, Result};

/// Connects to the broker with TCP_NODELAY set.
///
/// amiquip leaves Nagle's algorithm on, and with the broker's delayed ACKs every small
/// request/reply pair then waits about 40 ms. So the socket is opened here, tuned, and handed
/// to amiquip.
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
        let stream = mio::net::TcpStream::from_stream(stream)
            .map_err(|e| connect_error(format!("cannot make the socket non-blocking: {e}")))?;
        let heartbeat = url
            .heartbeat
            .unwrap_or_else(|| u16::try_from(heartbeat.as_secs()).unwrap_or(u16::MAX));
        let options = ConnectionOptions::<Auth>::default()
            .auth(Auth::Plain {
                username: url.user.clone(),
                password: url.password.clone(),
            })
            .virtual_host(url.vhost.clone())
            .heartbeat(heartbeat)
            .connection_timeout(Some(timeout))
            .information(Some(format!("fabric {name}")));
        return handshake(url, stream, options).map_err(|e| match e {
            amiquip::Error::InvalidCredentials => Error::AccessRefused {
                url: url.display.clone(),
            },
            other => connect_error(other.to_string()),
        });
    }
    Err(last_error)
}

#[cfg(not(feature = "tls"))]
fn handshake(
    _url: &BrokerUrl,
    stream: mio::net::TcpStream,
    options: ConnectionOptions<Auth>,
) -> amiquip::Result<Connection> {
    Connection::insecure_open_stream(stream, options, ConnectionTuning::default())
}

#[cfg(feature = "tls")]
fn handshake(
    url: &BrokerUrl,
    stream: mio::net::TcpStream,
    options: ConnectionOptions<Auth>,
) -> amiquip::Result<Connection> {
    if !url.tls {
        return Connection::insecure_open_stream(stream, options, ConnectionTuning::default());
    }
    let connector = native_tls::TlsConnector::new()
        .map_err(|source| amiquip::Error::CreateTlsConnector { source })?;
    Connection::open_tls_stream(
        connector,
        &url.host,
        stream,
        options,
        ConnectionTuning::default(),
    )
}
