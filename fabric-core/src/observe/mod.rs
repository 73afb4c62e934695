//! What fabric tells the world about its own work: the one seam where the optional `tracing`
//! and `metrics` features hook in. Client and server calls are guards that start, carry the
//! span a call travels in, and finish with an outcome; the other events are plain functions.
//! Without those features every function here does nothing beyond carrying the trace, and the
//! compiler removes it.
//!
//! An outcome is a stable snake_case label: `ok`, `error` (the method's own `Err`), or what
//! went wrong: [`Error::kind`](crate::Error::kind) on the client, the error reply's `type`
//! on the server (`panic`, `bad_arguments`, `unknown_method`, `deadline_exceeded`, ...).

#[cfg(feature = "metrics")]
mod metrics;

use crate::address::ServiceAddress;
use crate::trace::TraceContext;

#[cfg(feature = "tracing")]
mod spans;

/// The outcome of a call that answered with its value.
pub(crate) const OK: &str = "ok";
/// The outcome of a call whose method answered its own error (`Err` of a `Result` method).
pub(crate) const SERVICE_ERROR: &str = "error";
/// The outcome of a call whose caller dropped it without waiting for the answer.
const ABANDONED: &str = "abandoned";

/// Which end of a call is observed.
#[derive(Debug, Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// What both ends of a call keep: its span, and what metrics and tracing need to end it once.
#[derive(Debug)]
struct ObservedCall {
    trace: TraceContext,
    finished: bool,
    #[cfg(feature = "metrics")]
    metrics: metrics::CallMetrics,
    #[cfg(feature = "tracing")]
    span: spans::CallSpan,
}

impl ObservedCall {
    fn start(side: Side, service: &ServiceAddress, method: &str, trace: TraceContext) -> Self {
        let _ = (side, service, method);
        #[cfg(feature = "tracing")]
        let mut trace = trace;
        #[cfg(feature = "tracing")]
        let span = match side {
            Side::Client => spans::CallSpan::client(service, method, &mut trace),
            Side::Server => spans::CallSpan::server(service, method, &mut trace),
        };
        ObservedCall {
            trace,
            finished: false,
            #[cfg(feature = "metrics")]
            metrics: match side {
                Side::Client => metrics::CallMetrics::client(service, method),
                Side::Server => metrics::CallMetrics::server(service, method),
            },
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// Ends the call with `outcome`; only the first end counts.
    fn end(&mut self, outcome: &'static str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let _ = outcome;
        #[cfg(feature = "metrics")]
        self.metrics.finish(outcome);
        #[cfg(feature = "tracing")]
        self.span.finish(outcome);
    }
}

impl Drop for ObservedCall {
    fn drop(&mut self) {
        // A client call dropped unread, or a server call the worker unwound past (its reply
        // was not sent).
        self.end(ABANDONED);
    }
}

/// One call as its client sees it, from just before it is sent until its answer is read.
#[derive(Debug)]
pub(crate) struct ClientCall(ObservedCall);

impl ClientCall {
    /// A call of `service`'s `method`, about to be sent from the span `trace`.
    pub(crate) fn start(service: &ServiceAddress, method: &str, trace: TraceContext) -> ClientCall {
        ClientCall(ObservedCall::start(Side::Client, service, method, trace))
    }

    /// The span the call is sent from: its `traceparent`.
    pub(crate) fn trace(&self) -> &TraceContext {
        &self.0.trace
    }

    /// The call ended with `outcome`.
    pub(crate) fn finish(mut self, outcome: &'static str) {
        self.0.end(outcome);
    }
}

/// One call as a server runs it, from its delivery to its reply.
#[derive(Debug)]
pub(crate) struct ServerCall(ObservedCall);

impl ServerCall {
    /// A call of `service`'s `method`, delivered in the span `trace` (a child of the
    /// caller's).
    pub(crate) fn start(service: &ServiceAddress, method: &str, trace: TraceContext) -> ServerCall {
        ServerCall(ObservedCall::start(Side::Server, service, method, trace))
    }

    /// The span the call runs in: the handler's, and its reply's `traceparent`.
    pub(crate) fn trace(&self) -> &TraceContext {
        &self.0.trace
    }

    /// Runs the handler inside the call's span.
    pub(crate) fn run<R>(&self, handler: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let _entered = self.0.span.enter();
        handler()
    }

    /// The call was answered with `outcome`.
    pub(crate) fn finish(mut self, outcome: &'static str) {
        self.0.end(outcome);
    }
}

/// The span the `tracing` bridge has current on this thread, outside any fabric handler: what
/// a call, event, data message or log record sent there continues. `None` without the bridge.
pub(crate) fn ambient_trace() -> Option<TraceContext> {
    #[cfg(feature = "tracing")]
    return spans::ambient_trace();
    #[cfg(not(feature = "tracing"))]
    None
}

/// A data message (`kind` = `"data"`) or an event (`"event"`) was handed to the broker.
pub(crate) fn published(kind: &'static str) {
    let _ = kind;
    #[cfg(feature = "metrics")]
    metrics::published(kind);
}

/// The broker settled a published message: `true` for an ack, `false` for a nack or a loss.
pub(crate) fn confirmed(acked: bool) {
    let _ = acked;
    #[cfg(feature = "metrics")]
    metrics::confirmed(acked);
}

/// The link made a new connection after losing one.
pub(crate) fn reconnected() {
    #[cfg(feature = "metrics")]
    metrics::reconnected();
}

/// A remote logger dropped `count` records because its queue was full.
pub(crate) fn log_records_dropped(count: u64) {
    let _ = count;
    #[cfg(feature = "metrics")]
    metrics::log_records_dropped(count);
}
