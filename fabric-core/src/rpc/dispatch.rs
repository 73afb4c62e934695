//! The seam between generated code and the server: what `#[fabric_service]` implements.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Codec, Result};

/// A service a [`Server`](crate::Server) can run: decodes a call, runs the user's method,
/// encodes the result.
///
/// `#[fabric_service]` implements it for the generated `{Trait}Server<T>`; implement it by
/// hand only to serve something the macro cannot describe.
pub trait Dispatch: Send + Sync + 'static {
    /// The name of the service trait, for logs and keep-alives (`"Multiplier"`).
    const SERVICE: &'static str;

    /// The methods served, in the trait's order. The built-in `health_check` is not listed;
    /// every server answers it.
    const METHODS: &'static [&'static str];

    /// Runs `method` on the arguments in `body` (encoded with `codec`) and returns the result
    /// encoded with the same codec.
    ///
    /// Returns [`Error::Codec`](crate::Error::Codec) when the arguments do not decode or the
    /// result does not encode, and [`Error::UnknownMethod`](crate::Error::UnknownMethod) for a
    /// method not in [`METHODS`](Self::METHODS). A panic in the method is caught by the server.
    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> Result<Vec<u8>>;
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
