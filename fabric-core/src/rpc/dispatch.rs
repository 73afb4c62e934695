//! The seam between generated code and the server: what `#[fabric_service]` implements.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::reply::Reply;
use crate::Codec;

/// A service a [`Server`](crate::Server) can run: decodes a call, runs the user's method,
/// encodes its outcome.
///
/// `#[fabric_service]` implements it for the generated `{Trait}Server<T>`; implement it by
/// hand only to serve something the macro cannot describe. [`ServerBuilder::dispatcher`](
/// crate::ServerBuilder::dispatcher) gives it back, to test a service without a broker.
pub trait Dispatch: Send + Sync + 'static {
    /// The name of the service trait, for logs and keep-alives (`"Multiplier"`).
    const SERVICE: &'static str;

    /// The methods served, in the trait's order. The built-in `health_check` is not listed;
    /// every server answers it.
    const METHODS: &'static [&'static str];

    /// Runs `method` on the arguments in `body` (encoded with `codec`) and returns its
    /// outcome encoded with the same codec: [`Reply::value`] for a value (a method returning
    /// `Result` answers its `Ok` value so), [`Reply::error`] for the service's own error.
    ///
    /// Fails with [`DispatchError`] when the method is not served, its arguments do not fit,
    /// or the outcome does not encode; the server answers each with an error reply. A panic
    /// in the method is caught by the server.
    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> Result<Reply, DispatchError>;
}

/// Why a call could not be dispatched. The server answers each with its own error reply
/// (see the README's table of errors).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchError {
    /// The service has no method of that name: the method did not run.
    UnknownMethod,
    /// The arguments do not fit the method: one is missing, unexpected or of the wrong type,
    /// or the body does not decode at all. The method did not run. The message says which
    /// argument, in the words a Python server would use.
    BadArguments(String),
    /// The method ran, but its result or error could not be encoded.
    Unencodable(String),
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::UnknownMethod => f.write_str("no such method"),
            DispatchError::BadArguments(message) => write!(f, "bad arguments: {message}"),
            DispatchError::Unencodable(message) => write!(f, "cannot encode: {message}"),
        }
    }
}

impl std::error::Error for DispatchError {}

/// A type that can cross the wire as an argument or result: serde's `Serialize` and
/// `DeserializeOwned`. The macro checks every argument and return type against it so that a
/// mistake is reported once, at the type, in fabric's words.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the wire: fabric needs serde's `Serialize` and `Deserialize` for every argument and result",
    label = "not serializable",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait Wire: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> Wire for T {}
