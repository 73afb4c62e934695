//! What a handler can learn about the call it is running, and what goes on from it: set by
//! the worker around each dispatch, on the worker's own thread. Calls, events, data and log
//! records made there continue its trace and inherit its deadline.

use std::cell::{OnceCell, RefCell};
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::observe;
use crate::trace::TraceContext;

thread_local! {
    /// The call the current thread is running (or was handed with `attach`).
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

/// The call a server method is running, as the request carried it.
///
/// Read it from inside a method with [`CallContext::current`]; it is `None` anywhere else
/// (outside a server, or on a thread the method started, unless the method hands it over
/// with [`attach`](Self::attach)).
///
/// # What carries on from it
///
/// A call made inside a method, on the worker's thread, continues the method's trace (its
/// `traceparent` names the method's span as parent) and waits no longer than what is left of
/// the method's deadline; events, data messages and log records sent there carry the same
/// trace. So one request can be followed across services, and a downstream call gives up when
/// its caller would.
///
/// # Redelivered calls
///
/// [`redelivered`](Self::redelivered) is set on a call the broker delivered before without
/// getting an answer, because the instance that held it died or lost its connection. Such a
/// call may already have run, in part or in full, so a method that is not idempotent can check
/// what it did before, or refuse:
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
    /// The method's span: its own id, the trace's, and the caller's span as parent.
    pub(crate) trace: TraceContext,
    /// `trace`'s ids as text, for the `&str` accessors: written the first time one is read,
    /// so a call whose handler never asks pays nothing for them.
    ids: OnceCell<Ids>,
    /// When the caller gives up, if it said.
    pub(crate) deadline: Option<Instant>,
}

impl CallContext {
    /// A context for a call of `method` from `queue`, in the span `trace`.
    pub(crate) fn new(
        method: &str,
        queue: &str,
        codec: Codec,
        trace: TraceContext,
        deadline: Option<Instant>,
    ) -> CallContext {
        CallContext {
            method: method.to_owned(),
            queue: queue.to_owned(),
            correlation_id: None,
            reply_to: None,
            redelivered: false,
            codec,
            ids: OnceCell::new(),
            trace,
            deadline,
        }
    }

    /// The call this thread is running, or `None` outside a server method.
    pub fn current() -> Option<CallContext> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Runs `f` with the current call, without copying it.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&CallContext>) -> R) -> R {
        let mut f = Some(f);
        let mut run = |call: Option<&CallContext>| (f.take().expect("run once"))(call);
        match CURRENT.try_with(|current| run(current.borrow().as_ref())) {
            Ok(result) => result,
            // The thread is ending and its current call is gone.
            Err(_) => run(None),
        }
    }

    /// The span a message sent now goes out from, and what is left of the current call's
    /// deadline: inside a call, the call's own span, so what it sends names it as parent;
    /// outside, the span of the `tracing` bridge when one is active, else the first span of
    /// a new trace.
    pub(crate) fn outgoing() -> (TraceContext, Option<Duration>) {
        CallContext::with_current(|call| match call {
            Some(call) => (call.trace.clone(), call.remaining()),
            None => (
                observe::ambient_trace().unwrap_or_else(TraceContext::root),
                None,
            ),
        })
    }

    /// The span a message sent now goes out from: see [`outgoing`](Self::outgoing).
    pub(crate) fn outgoing_trace() -> TraceContext {
        CallContext::outgoing().0
    }

    /// A context that continues the W3C trace of a request from outside fabric: `traceparent`
    /// (and `tracestate`) as an HTTP gateway received them. [`attach`](Self::attach) it on
    /// the thread that then calls services: their calls continue that trace, in a span of
    /// their own whose parent is the one the header names. It belongs to no call of a
    /// server, so its [`method`](Self::method) and [`queue`](Self::queue) are empty, and it
    /// sets no deadline. `None` when `traceparent` is not W3C's.
    ///
    /// ```
    /// use fabric_core::CallContext;
    ///
    /// let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let context = CallContext::continue_trace(traceparent, None).unwrap();
    /// assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(context.parent_span_id(), Some("00f067aa0ba902b7"));
    /// let _attached = context.attach(); // calls made on this thread now continue the trace
    /// assert!(CallContext::continue_trace("not a traceparent", None).is_none());
    /// ```
    pub fn continue_trace(traceparent: &str, tracestate: Option<&str>) -> Option<CallContext> {
        let trace = TraceContext::continue_from(traceparent, tracestate)?;
        Some(CallContext::new("", "", Codec::Json, trace, None))
    }

    /// Makes this the current call of this thread until the guard is dropped: for a method
    /// that hands work to a thread of its own, whose calls should continue its trace and
    /// respect its deadline.
    ///
    /// ```
    /// # use fabric_core::CallContext;
    /// fn handler() {
    ///     let call = CallContext::current();
    ///     std::thread::spawn(move || {
    ///         let _attached = call.as_ref().map(CallContext::attach);
    ///         // calls made here carry the handler's trace and deadline
    ///     });
    /// }
    /// # handler();
    /// ```
    pub fn attach(&self) -> Attached {
        Attached {
            _current: CurrentCall::enter(self.clone()),
        }
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

    /// The ids as text, written on first use.
    fn ids(&self) -> &Ids {
        self.ids.get_or_init(|| Ids {
            trace_id: self.trace.trace_id_hex(),
            span_id: self.trace.span_id_hex(),
            parent_span_id: self.trace.parent_id_hex(),
        })
    }

    /// The trace this call belongs to: W3C's trace id, 32 lowercase hex digits. The caller's
    /// (from its `traceparent`), or a new one when it sent none (a Python caller).
    pub fn trace_id(&self) -> &str {
        &self.ids().trace_id
    }

    /// This call's own span in the trace: 16 lowercase hex digits. Calls made from here name
    /// it as their parent.
    pub fn span_id(&self) -> &str {
        &self.ids().span_id
    }

    /// The caller's span, the parent of this one: 16 lowercase hex digits; `None` when the
    /// caller sent no trace.
    pub fn parent_span_id(&self) -> Option<&str> {
        self.ids().parent_span_id.as_deref()
    }

    /// When the caller gives up on this call (its timeout, counted on the wall clock from when
    /// it sent the call), if it said: a Python caller does not.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What is left until the [`deadline`](Self::deadline): zero once it has passed, `None`
    /// without one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// A call's trace ids as W3C writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ids {
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
}

/// The current call handed to another thread with [`CallContext::attach`]; dropping it
/// restores what was current there before.
#[derive(Debug)]
#[must_use = "the call is current only while the guard lives"]
pub struct Attached {
    _current: CurrentCall,
}

/// Makes `context` the current call while it lives, and restores whatever was current
/// before when dropped (also when the method panics and the stack unwinds).
#[derive(Debug)]
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
        let mut context = CallContext::new(
            method,
            &format!("d.api.t.i::{method}"),
            Codec::Json,
            TraceContext::root(),
            None,
        );
        context.redelivered = redelivered;
        context
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

    #[test]
    fn attach_carries_a_call_to_another_thread() {
        let mut context = call("outer", false);
        context.deadline = Some(Instant::now() + Duration::from_secs(60));
        let trace_id = context.trace_id().to_owned();
        std::thread::spawn(move || {
            assert!(CallContext::current().is_none());
            let attached = context.attach();
            let current = CallContext::current().unwrap();
            assert_eq!(current.trace_id(), trace_id);
            assert!(current.remaining().unwrap() > Duration::from_secs(50));
            drop(attached);
            assert!(CallContext::current().is_none());
        })
        .join()
        .unwrap();
    }
}
