//! How a call becomes its reply: the dispatcher runs with the call's [`CallContext`] current,
//! a panic is caught, and every outcome is encoded as the reply that goes on the wire. The
//! one place that decides it, for a server's worker and for a local client alike (`local.rs`),
//! so a call answers the same wherever it runs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::caller::Outcome;
use super::context::{CallContext, CurrentCall};
use super::dispatch::Dispatch;
use super::protocol::{self, error_kind};
use super::reply::{DispatchError, Reply};
use crate::codec::{Codec, JSON_CONTENT_TYPE};
use crate::observe::{self, ServerCall};

/// The reply to one call, as it goes on the wire.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The message's `type`: `result` or `error`.
    pub(crate) kind: &'static str,
    /// The outcome's label for metrics and tracing (see `observe`).
    pub(crate) outcome: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    /// What the method answered: its value, or its own error.
    pub(crate) fn reply(reply: Reply) -> Answer {
        let (kind, outcome) = if reply.is_error() {
            (protocol::TYPE_ERROR, observe::SERVICE_ERROR)
        } else {
            (protocol::TYPE_RESULT, observe::OK)
        };
        Answer {
            kind,
            outcome,
            content_type: reply.codec().content_type(),
            body: reply.into_body(),
        }
    }

    /// A failure of the server's own, in JSON as amqp-fabric writes error replies.
    pub(crate) fn failure(kind: &'static str, message: String) -> Answer {
        Answer {
            kind: protocol::TYPE_ERROR,
            // Python's name for it on the wire, fabric's own in labels.
            outcome: if kind == error_kind::BAD_ARGUMENTS {
                "bad_arguments"
            } else {
                kind
            },
            content_type: JSON_CONTENT_TYPE,
            body: protocol::encode_error(kind, &message),
        }
    }

    /// What a caller receiving this reply sees: as the reply session reads a `result` or
    /// `error` message by its `type` and content type.
    pub(crate) fn into_outcome(self) -> Outcome {
        let codec = Codec::from_content_type(Some(self.content_type));
        match (self.kind == protocol::TYPE_ERROR, codec) {
            (true, codec) => Outcome::Failed {
                codec,
                body: self.body,
            },
            (false, Some(codec)) => Outcome::Result {
                codec,
                body: self.body,
            },
            (false, None) => Outcome::Undecodable {
                content_type: Some(self.content_type.to_owned()),
            },
        }
    }
}

/// Runs one call of `context`'s method on `dispatcher` with `context` current, inside the
/// span of `observed`: the body of every call a server or a local client runs.
pub(crate) fn run_call<D: Dispatch>(
    dispatcher: &D,
    context: CallContext,
    observed: &ServerCall,
    body: &[u8],
) -> Answer {
    let (method, codec) = (context.method.clone(), context.codec);
    // Restores the previous context when dropped, also if `execute` unwinds.
    let _call = CurrentCall::enter(context);
    observed.run(|| execute(dispatcher, &method, codec, body))
}

/// Decodes, runs and encodes one call; a panic in the method becomes a `panic` reply.
fn execute<D: Dispatch>(dispatcher: &D, method: &str, codec: Codec, body: &[u8]) -> Answer {
    let outcome = if method == protocol::HEALTH_CHECK {
        Ok(Reply::value(codec, &true))
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            dispatcher.dispatch(method, codec, body)
        }))
    };
    match outcome {
        Ok(Ok(reply)) => Answer::reply(reply),
        Ok(Err(DispatchError::UnknownMethod)) => Answer::failure(
            error_kind::UNKNOWN_METHOD,
            format!("{} has no method `{method}`", D::SERVICE),
        ),
        Ok(Err(DispatchError::BadArguments(message))) => {
            Answer::failure(error_kind::BAD_ARGUMENTS, message)
        }
        Ok(Err(DispatchError::Unencodable(message))) => {
            log::error!(
                "fabric: {}::{method} answered what cannot be encoded: {message}",
                D::SERVICE
            );
            Answer::failure(
                error_kind::INTERNAL,
                format!("the outcome of `{method}` cannot be encoded: {message}"),
            )
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
            log::error!("fabric: {}::{method} panicked: {message}", D::SERVICE);
            Answer::failure(
                error_kind::PANIC,
                format!("the handler panicked: {message}"),
            )
        }
    }
}
