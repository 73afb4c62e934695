//! The TLS stream fabric hands to amiquip: the handshake, run by fabric on its own socket,
//! and a stream amiquip's poll can watch.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use mio::{Evented, Poll, PollOpt, Ready, Token};
use native_tls::{HandshakeError, TlsConnector, TlsStream};

use super::tls_failure;

/// Runs the TLS handshake with `domain` on `stream` (blocking, each step bounded by what
/// is left until `deadline`), then turns the socket non-blocking for amiquip. The error is
/// the TLS library's message.
pub(crate) fn handshake(
    connector: &TlsConnector,
    domain: &str,
    stream: TcpStream,
    deadline: Instant,
) -> Result<TlsSocket, String> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    let timed_out = || "the TLS handshake timed out".to_owned();
    let set_timeouts = |stream: &TcpStream| -> Result<(), String> {
        let left = left().ok_or_else(timed_out)?;
        stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left)))
            .map_err(|e| format!("cannot set the socket's timeouts: {e}"))
    };
    set_timeouts(&stream)?;
    let mut attempt = connector.connect(domain, stream);
    let tls = loop {
        match attempt {
            Ok(tls) => break tls,
            Err(HandshakeError::Failure(e)) => return Err(e.to_string()),
            // A blocking socket would block only when its timeout ran out.
            Err(HandshakeError::WouldBlock(mid)) => {
                if left().is_none() {
                    return Err(timed_out());
                }
                set_timeouts(mid.get_ref())?;
                attempt = mid.handshake();
            }
        }
    };
    let socket = tls.get_ref();
    let evented = socket
        .set_read_timeout(None)
        .and_then(|()| socket.set_write_timeout(None))
        .and_then(|()| socket.set_nonblocking(true))
        // amiquip's poll watches the socket through a second handle to it (mio 0.6
        // wants its own TcpStream type); reads and writes go through TLS.
        .and_then(|()| socket.try_clone())
        .and_then(mio::net::TcpStream::from_stream)
        .map_err(|e| format!("cannot hand the socket over: {e}"))?;
    Ok(TlsSocket { tls, evented })
}

/// A TLS stream that amiquip can poll.
pub(crate) struct TlsSocket {
    tls: TlsStream<TcpStream>,
    evented: mio::net::TcpStream,
}

impl Read for TlsSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tls.read(buf)
    }
}

impl TlsSocket {
    /// What a failed write means. TLS 1.3 ends the handshake on fabric's side before the
    /// broker has judged the client certificate, so a refusal can meet fabric's first
    /// write: the broker sends its alert and hangs up, and the write sees the connection
    /// reset. The alert is still unread in the socket (received data stays readable after
    /// a reset); read it, it says why.
    fn explain(&mut self, error: io::Error) -> io::Error {
        if !matches!(
            error.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ) {
            return error;
        }
        match self.tls.read(&mut [0u8; 1]) {
            Err(alert) if tls_failure::is_tls_message(&alert.to_string()) => alert,
            _ => error,
        }
    }
}

impl Write for TlsSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf).map_err(|e| self.explain(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush()
    }
}

impl Evented for TlsSocket {
    fn register(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.evented.register(poll, token, interest, opts)
    }

    fn reregister(
        &self,
        poll: &Poll,
        token: Token,
        interest: Ready,
        opts: PollOpt,
    ) -> io::Result<()> {
        self.evented.reregister(poll, token, interest, opts)
    }

    fn deregister(&self, poll: &Poll) -> io::Result<()> {
        self.evented.deregister(poll)
    }
}
