//! The seam between generated code and the server: what `#[fabric_service]` implements.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::reply::{DispatchError, Reply};
use crate::codec::Codec;
use crate::contract::Contract;

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

    /// The service's contract, announced in the server's keep-alives: what `#[fabric_service]`
    /// read from the trait. `None` (the default) for a hand-written dispatcher, which then
    /// announces none.
    fn contract() -> Option<Contract> {
        None
    }

    /// Runs `method` on the arguments in `body` (encoded with `codec`) and returns its
    /// outcome encoded with the same codec: [`Reply::value`] for a value (a method returning
    /// `Result` answers its `Ok` value so), [`Reply::error`] for the service's own error.
    ///
    /// Fails with [`DispatchError`] when the method is not served, its arguments do not fit,
    /// or the outcome does not encode; the server answers each with an error reply. A panic
    /// in the method is caught by the server.
    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> Result<Reply, DispatchError>;
}

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
