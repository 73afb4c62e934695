//! The one error type of fabric.

use std::fmt;
use std::time::Duration;

mod refusal;
mod tls_failure;

pub use refusal::Refusal;
pub use tls_failure::TlsFailure;

/// A `Result` whose error defaults to fabric's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fabric.
///
/// Every variant says when it happens. Errors of the underlying AMQP client are carried as text,
/// never as that crate's types, so fabric can change clients without breaking callers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A domain, service type, service id or method name breaks amqp-fabric's naming rules.
    /// Raised before anything is sent to the broker.
    InvalidName {
        /// What the name is for: `"domain"`, `"service type"`, `"service id"` or `"method"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The broker URL cannot be used: bad syntax, unknown scheme, a query parameter that is
    /// unknown or has a bad value, or `amqps` in a build without the `tls` feature. The
    /// password, if any, is not included.
    InvalidUrl {
        /// The URL with its password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The broker could not be reached or the AMQP handshake failed.
    Connect {
        /// The URL with its password masked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The broker refused this participant: its login (user name and password, or with
    /// EXTERNAL the user named by its client certificate) or the virtual host. Raised by
    /// [`Fabric::connect`](crate::Fabric::connect) at once, without trying the other URLs
    /// (the nodes of a cluster share their users and vhosts), and by a reconnection.
    AccessRefused {
        /// The URL with its password masked.
        url: String,
        /// What the broker refused.
        refusal: Refusal,
        /// What the broker said, when it said something (RabbitMQ names the vhost or the
        /// mechanism; never the password).
        message: String,
    },
    /// The TLS connection to the broker failed: fabric refused the broker's certificate, or
    /// the broker refused fabric's client certificate ([`TlsFailure::refused_by_broker`]).
    Tls {
        /// The URL with its password masked.
        url: String,
        /// What failed, and on which side.
        failure: TlsFailure,
        /// The TLS library's words, for people.
        reason: String,
    },
    /// A TLS setting cannot be used: a file named in the URL (`cacertfile`, `certfile`,
    /// `keyfile`) that cannot be read, PEM that holds no certificate or key, a key that does
    /// not match its certificate. Raised by [`Fabric::connect`](crate::Fabric::connect)
    /// before any connection. Key material is never quoted.
    InvalidTls {
        /// The setting: a URL query parameter with its value (`keyfile=/etc/fabric/key.pem`)
        /// or a [`TlsConfig`](crate::TlsConfig) method.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A call was sent to a service that has no running instance: its method queues do not
    /// exist, so the broker returned the call at once. Also from
    /// [`Fabric::check_contract`](crate::Fabric::check_contract) when no keep-alive of the
    /// service arrived within the discovery TTL.
    NoSuchService {
        /// The service's fully qualified name, `domain.type.id`.
        service: String,
    },
    /// The service runs but has no such method; the broker returned the call at once.
    UnknownMethod {
        /// The service's fully qualified name.
        service: String,
        /// The method called.
        method: String,
    },
    /// No reply arrived in time. The call was sent with the same expiration, so the broker
    /// drops it if it is still queued; a server that had already taken it may still run it.
    Timeout {
        /// The service's fully qualified name.
        service: String,
        /// The method called.
        method: String,
        /// The time that ran out.
        timeout: Duration,
    },
    /// The service refused the call's arguments: one was missing, unexpected or of the wrong
    /// type, or the body did not decode. A fabric server refuses them before running the
    /// method. A Python server reports it as `TypeError`, which Python also raises for other
    /// mistakes inside a method, so from a Python peer the method may have started.
    BadArguments {
        /// The service's fully qualified name.
        service: String,
        /// The method called.
        method: String,
        /// What was wrong, naming the argument (`multiply() got an unexpected keyword
        /// argument 'c'`).
        message: String,
    },
    /// The server took the call but answered with an error that is not a value of the
    /// method's own error type: the handler panicked, the message was not a call it could
    /// read, or (for a Python peer) the method raised.
    ///
    /// A method that returns `Result<T, E>` gets its `Err(e)` back as `Ok(Err(e))`, not as
    /// this error.
    Remote {
        /// The service's fully qualified name.
        service: String,
        /// The method called.
        method: String,
        /// The error reply's `type`: `"panic"`, `"bad_request"` (not a call fabric reads),
        /// `"internal"` (the outcome could not be encoded), or a Python exception class
        /// such as `"ZeroDivisionError"` or `"my_module.OutOfStock"`.
        kind: String,
        /// The server's message.
        message: String,
    },
    /// A value could not be encoded, or a received body could not be decoded.
    Codec {
        /// What was being encoded or decoded.
        context: String,
        /// The codec's message.
        reason: String,
    },
    /// A call made inside a handler was not sent: the deadline of the call being handled had
    /// passed (its caller has given up), so nothing downstream is worth doing.
    DeadlineExceeded {
        /// The service's fully qualified name.
        service: String,
        /// The method that was to be called.
        method: String,
    },
    /// The connection to the broker broke under an operation (a publish awaiting its confirm,
    /// a channel being opened). fabric reconnects by itself; what was in flight may or may not
    /// have reached the broker. A call in flight fails with [`Error::CallInterrupted`] instead.
    ConnectionLost {
        /// Why the connection ended, as far as it is known.
        reason: String,
    },
    /// The connection to the broker broke while the call was in flight: it was sent, but its
    /// reply cannot come any more. The call may or may not have run on the server; retry it
    /// only if running it twice is harmless (see the `idempotent` method attribute).
    CallInterrupted {
        /// The service's fully qualified name.
        service: String,
        /// The method called.
        method: String,
        /// Why the connection ended, as far as it is known.
        reason: String,
    },
    /// The broker stayed unreachable while fabric reconnected, for as long as the operation
    /// could wait (a call's timeout). Nothing was sent, so nothing ran.
    Unavailable {
        /// Why the connection is down, as far as it is known.
        reason: String,
        /// How long the operation waited for the connection.
        waited: Duration,
    },
    /// The broker refused an operation (declaring a queue with other arguments, a channel
    /// error, ...).
    Broker {
        /// What fabric was doing.
        operation: String,
        /// The broker's or client's message.
        reason: String,
    },
    /// The broker did not confirm a published message within the time a
    /// [`Receipt::wait_timeout`](crate::Receipt::wait_timeout) gave it: it may still take it.
    ConfirmTimeout {
        /// The time that ran out.
        timeout: Duration,
    },
    /// The broker refused an operation because the user lacks the permission (RabbitMQ's
    /// ACCESS_REFUSED on a channel): declaring, binding to or reading from a queue or exchange
    /// outside the user's configure, write and read patterns. The README's "Security" section
    /// lists what each role of fabric needs.
    PermissionDenied {
        /// What fabric was doing.
        operation: String,
        /// What the broker said (names the resource, the vhost and the user).
        message: String,
    },
    /// The broker refused a published message (a negative publisher confirm), so it was not
    /// stored or routed.
    PublishRejected {
        /// What the broker or fabric said.
        reason: String,
    },
    /// The system would not start a thread fabric needs (a server's worker, a subscription's
    /// consumer, ...): too many threads, or out of memory.
    Spawn {
        /// The thread's name.
        thread: String,
        /// What the system said.
        reason: String,
    },
    /// The running service does not serve the contract this client was built for, as
    /// [`Fabric::check_contract`](crate::Fabric::check_contract) (and the generated
    /// `connect_checked`) found from its keep-alive.
    ContractMismatch {
        /// The service's fully qualified name.
        service: String,
        /// The first difference, in words ("method `divide` takes (x: i64, y: i64) there,
        /// (a: i64, b: i64) here"), or that it announces no contract.
        difference: String,
    },
    /// The [`Fabric`](crate::Fabric) or server was closed, so the operation cannot run.
    Closed,
    /// [`Fabric::list_services`](crate::Fabric::list_services) or a watch of services was
    /// asked of a fabric that does not listen to keep-alives: connect it with
    /// [`FabricConfig::keep_alive_listen`](crate::FabricConfig::keep_alive_listen)`(true)`.
    NotListening,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { kind, name, reason } => {
                write!(f, "invalid {kind} {name:?}: {reason}")
            }
            Error::InvalidUrl { url, reason } => write!(f, "invalid broker URL {url}: {reason}"),
            Error::Connect { url, reason } => write!(f, "cannot connect to {url}: {reason}"),
            Error::AccessRefused {
                url,
                refusal,
                message,
            } => {
                write!(f, "the broker at {url} refused {refusal}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Tls {
                url,
                failure,
                reason,
            } => write!(f, "TLS with {url} failed: {failure} ({reason})"),
            Error::InvalidTls { setting, reason } => {
                write!(f, "TLS setting {setting} cannot be used: {reason}")
            }
            Error::NoSuchService { service } => {
                write!(f, "no instance of service {service} is running")
            }
            Error::UnknownMethod { service, method } => {
                write!(f, "service {service} has no method `{method}`")
            }
            Error::Timeout {
                service,
                method,
                timeout,
            } => write!(
                f,
                "call to {service}::{method} got no reply within {timeout:?} (it may still run on the server)"
            ),
            Error::BadArguments {
                service,
                method,
                message,
            } => write!(f, "{service}::{method} refused its arguments: {message}"),
            Error::Remote {
                service,
                method,
                kind,
                message,
            } => write!(f, "{service}::{method} failed on the server ({kind}): {message}"),
            Error::Codec { context, reason } => write!(f, "cannot {context}: {reason}"),
            Error::DeadlineExceeded { service, method } => write!(
                f,
                "call to {service}::{method} not sent: the deadline of the call being handled \
                 has passed"
            ),
            Error::ConnectionLost { reason } => write!(
                f,
                "connection to the broker lost ({reason}); what was in flight may or may not \
                 have reached the broker"
            ),
            Error::CallInterrupted {
                service,
                method,
                reason,
            } => write!(
                f,
                "call to {service}::{method} interrupted: the connection to the broker broke \
                 while it was in flight ({reason}); it may or may not have run"
            ),
            Error::Unavailable { reason, waited } => write!(
                f,
                "the broker was unreachable for {waited:?} ({reason}); nothing was sent"
            ),
            Error::Broker { operation, reason } => {
                write!(f, "broker refused to {operation}: {reason}")
            }
            Error::ConfirmTimeout { timeout } => write!(
                f,
                "the broker did not confirm a published message within {timeout:?}; it may \
                 still take it"
            ),
            Error::PermissionDenied { operation, message } => write!(
                f,
                "the broker denied the permission to {operation}: {message} (see \"Security\" \
                 in fabric's README for the permissions each role needs)"
            ),
            Error::PublishRejected { reason } => write!(f, "the broker refused a message: {reason}"),
            Error::Spawn { thread, reason } => {
                write!(f, "cannot start the thread {thread}: {reason}")
            }
            Error::ContractMismatch {
                service,
                difference,
            } => write!(
                f,
                "service {service} does not serve this client's contract: {difference}"
            ),
            Error::Closed => f.write_str("the fabric connection or server is closed"),
            Error::NotListening => f.write_str(
                "this fabric does not listen to keep-alives, so it knows no services: \
                 connect it with FabricConfig::keep_alive_listen(true)",
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether an operation that failed with this error may succeed if tried again: it may
    /// not have completed because the connection broke ([`CallInterrupted`](Self::CallInterrupted),
    /// [`ConnectionLost`](Self::ConnectionLost)), the broker was away
    /// ([`Unavailable`](Self::Unavailable)), no answer came in time
    /// ([`Timeout`](Self::Timeout), [`ConfirmTimeout`](Self::ConfirmTimeout)), or a service's
    /// queues were missing ([`NoSuchService`](Self::NoSuchService): a server declares them
    /// again after a reconnection). An answer of the service, a refusal, a codec error or a
    /// closed fabric would only repeat.
    ///
    /// This is what [`RetryPolicy`](crate::RetryPolicy) retries idempotent calls on; a call
    /// that is not idempotent must not be retried on it blindly, since it may have run.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::CallInterrupted { .. }
                | Error::ConnectionLost { .. }
                | Error::Unavailable { .. }
                | Error::Timeout { .. }
                | Error::ConfirmTimeout { .. }
                | Error::NoSuchService { .. }
        )
    }

    /// A stable snake_case name for the kind of error, the same for every value of a variant
    /// (`"timeout"`, `"call_interrupted"`, `"remote"`, ...): for metrics labels, span fields and
    /// log lines, where the message would be too varied.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidName { .. } => "invalid_name",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Connect { .. } => "connect",
            Error::AccessRefused { .. } => "access_refused",
            Error::Tls { .. } => "tls",
            Error::InvalidTls { .. } => "invalid_tls",
            Error::NoSuchService { .. } => "no_such_service",
            Error::UnknownMethod { .. } => "unknown_method",
            Error::Timeout { .. } => "timeout",
            Error::BadArguments { .. } => "bad_arguments",
            Error::Remote { .. } => "remote",
            Error::Codec { .. } => "codec",
            Error::DeadlineExceeded { .. } => "deadline_exceeded",
            Error::ConnectionLost { .. } => "connection_lost",
            Error::CallInterrupted { .. } => "call_interrupted",
            Error::Unavailable { .. } => "unavailable",
            Error::Broker { .. } => "broker",
            Error::ConfirmTimeout { .. } => "confirm_timeout",
            Error::PermissionDenied { .. } => "permission_denied",
            Error::PublishRejected { .. } => "publish_rejected",
            Error::Spawn { .. } => "spawn",
            Error::ContractMismatch { .. } => "contract_mismatch",
            Error::Closed => "closed",
            Error::NotListening => "not_listening",
        }
    }

    /// Wraps an AMQP client error met while doing `operation`.
    pub(crate) fn broker(operation: impl Into<String>, err: amiquip::Error) -> Error {
        match err {
            amiquip::Error::ClientClosedConnection => Error::Closed,
            // The I/O thread ended: closed on purpose, or broken (the link tells which).
            amiquip::Error::EventLoopDropped
            | amiquip::Error::UnexpectedSocketClose
            | amiquip::Error::MissedServerHeartbeats
            | amiquip::Error::IoErrorReadingSocket { .. }
            | amiquip::Error::IoErrorWritingSocket { .. }
            | amiquip::Error::ServerClosedConnection { .. } => Error::ConnectionLost {
                reason: err.to_string(),
            },
            amiquip::Error::ServerClosedChannel {
                code: 403, message, ..
            } => Error::PermissionDenied {
                operation: operation.into(),
                message,
            },
            other => Error::Broker {
                operation: operation.into(),
                reason: other.to_string(),
            },
        }
    }
}
