//! What a handler can learn about the call it is running: set by the worker around each
//! dispatch, on the worker's own thread.

use std::cell::RefCell;

use crate::codec::Codec;

thread_local! {
    /// The call the current thread is running, if it is a worker inside a dispatch.
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

/// The call a server method is running, as the request carried it.
///
/// Read it from inside a method with [`CallContext::current`]; it is `None` anywhere else
/// (outside a server, or on a thread the method started). The most useful part is
/// [`redelivered`](Self::redelivered): the broker sets it on a call it delivered before
/// without getting an answer, because the instance that held it died or lost its connection.
/// Such a call may already have run, in part or in full, so a method that is not idempotent
/// can check what it did before, or refuse:
///
/// ```
/// use fabric_core::CallContext;
///
/// fn transfer(amount: u64) -> Result<(), String> {
///     if CallContext::current().is_some_and(|call| call.redelivered()) {
///         // Another instance may have run this call before it died: look the transfer
///         // up by its correlation id instead of making it twice.
///         return Err("retried transfer: check the ledger first".to_owned());
///     }
///     // ... make the transfer ...
///     # let _ = amount;
///     Ok(())
/// }
/// # assert!(CallContext::current().is_none()); // not inside a call here
/// # transfer(5).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub(crate) method: String,
    pub(crate) queue: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) reply_to: Option<String>,
    pub(crate) redelivered: bool,
    pub(crate) codec: Codec,
}

impl CallContext {
    /// The call this thread is running, or `None` outside a server method.
    pub fn current() -> Option<CallContext> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Whether the broker delivered this call before (AMQP's `redelivered` flag): the
    /// instance that took it first died or lost its connection before it acked, so the call
    /// may already have run, in part or in full. `false` on a first delivery.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// The method called (`"multiply"`, or `"health_check"`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The queue the call came from: `{domain}.api.{type}.{id}::{method}`.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The caller's correlation id, which its reply will carry; the same on every delivery
    /// of one call, so it can key a record of calls already done.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// The queue the reply goes to: the caller's reply queue.
    pub fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }

    /// The codec of the call's body (chosen by its `content_type`), and of the reply.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The call's `content_type`, as the codec names it.
    pub fn content_type(&self) -> &'static str {
        self.codec.content_type()
    }
}

/// Makes `context` the current call while it lives, and restores whatever was current
/// before when dropped (also when the method panics and the stack unwinds).
pub(crate) struct CurrentCall {
    previous: Option<CallContext>,
}

impl CurrentCall {
    /// Sets `context` as the current thread's call.
    pub(crate) fn enter(context: CallContext) -> CurrentCall {
        let previous = CURRENT.with(|current| current.borrow_mut().replace(context));
        CurrentCall { previous }
    }
}

impl Drop for CurrentCall {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // `try_with`: the thread-local may already be gone if the thread is ending.
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, redelivered: bool) -> CallContext {
        CallContext {
            method: method.to_owned(),
            queue: format!("d.api.t.i::{method}"),
            correlation_id: Some("c1".to_owned()),
            reply_to: Some("replies".to_owned()),
            redelivered,
            codec: Codec::Json,
        }
    }

    #[test]
    fn current_only_inside_a_call_and_restored_after() {
        assert_eq!(CallContext::current(), None);
        let outer = CurrentCall::enter(call("outer", false));
        assert_eq!(CallContext::current().unwrap().method(), "outer");
        let inner = CurrentCall::enter(call("inner", true));
        assert!(CallContext::current().unwrap().redelivered());
        drop(inner);
        assert_eq!(CallContext::current().unwrap().method(), "outer");
        drop(outer);
        assert_eq!(CallContext::current(), None);
    }

    #[test]
    fn a_panic_clears_the_call() {
        let outcome = std::panic::catch_unwind(|| {
            let _call = CurrentCall::enter(call("boom", false));
            assert!(CallContext::current().is_some());
            panic!("boom");
        });
        assert!(outcome.is_err());
        assert_eq!(CallContext::current(), None);
    }
}
