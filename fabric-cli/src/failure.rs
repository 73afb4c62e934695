//! Why the command failed, and the exit status that tells it to a script.

use fabric_core::Error;

/// The exit status of each kind of failure: documented in the README ("Command line") and
/// in `fabric --help`. Clap's own usage errors exit with 2 as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Anything not listed below: the broker refused an operation, output failed, ...
    Other = 1,
    /// The command line is wrong: a malformed address, `--args` that is not a JSON object,
    /// a header without `=`.
    Usage = 2,
    /// The broker cannot be reached, or refused the login or the virtual host.
    Broker = 3,
    /// No instance of the service is running (or announcing itself).
    NoSuchService = 4,
    /// The service has no such method.
    UnknownMethod = 5,
    /// The arguments do not fit the method: checked against the announced contract, or
    /// refused by the service.
    BadArguments = 6,
    /// No reply within `--timeout`.
    Timeout = 7,
    /// The service answered with an error: its method's own error, an exception of a
    /// Python service, or a panic.
    ServiceError = 8,
}

/// A failure: one line for stderr and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Code::Usage, message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let code = match &error {
            Error::InvalidUrl { .. }
            | Error::Connect { .. }
            | Error::AccessRefused { .. }
            | Error::Tls { .. }
            | Error::InvalidTls { .. }
            | Error::Unavailable { .. }
            | Error::ConnectionLost { .. } => Code::Broker,
            Error::InvalidName { .. } => Code::Usage,
            Error::NoSuchService { .. } => Code::NoSuchService,
            Error::UnknownMethod { .. } => Code::UnknownMethod,
            Error::BadArguments { .. } => Code::BadArguments,
            Error::Timeout { .. } => Code::Timeout,
            Error::Remote { .. } => Code::ServiceError,
            _ => Code::Other,
        };
        // One line, whatever the broker said.
        Failure::new(code, error.to_string().replace('\n', " "))
    }
}
