//! The in-process transport of an [`RpcClient`](crate::RpcClient): calls run on a dispatcher
//! in this process, through the real codec and the same answer-building code as a server's
//! worker (`answer.rs`), on a thread of their own, with no broker.
//!
//! Each call gets a thread that runs it and ends; a caller that stops waiting (its timeout,
//! or it dropped the call) leaves the thread to finish, and the transport joins every such
//! thread when its last client is dropped, so no thread outlives the clients.

mod faults;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use parking_lot::Mutex;

pub use faults::{Fault, Faults};

use super::answer::{self, Answer};
use super::caller::Outcome;
use super::context::CallContext;
use super::dispatch::Dispatch;
use super::protocol::CorrelationIds;
use crate::address::ServiceAddress;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::observe::ServerCall;
use crate::trace::TraceContext;

/// Runs one call on the dispatcher: its context, span and body.
type Run = dyn Fn(CallContext, &ServerCall, &[u8]) -> Answer + Send + Sync;

/// Where a local client's calls run.
pub(crate) struct LocalTransport {
    run: Arc<Run>,
    faults: Faults,
    ids: CorrelationIds,
    /// Threads of calls whose caller stopped waiting, joined when the transport goes.
    stragglers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for LocalTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransport")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl LocalTransport {
    /// A transport that runs every call on `dispatcher`.
    pub(crate) fn new<D: Dispatch>(dispatcher: D) -> LocalTransport {
        let dispatcher = Arc::new(dispatcher);
        LocalTransport {
            run: Arc::new(move |context, observed: &ServerCall, body: &[u8]| {
                answer::run_call(&*dispatcher, context, observed, body)
            }),
            faults: Faults::default(),
            ids: CorrelationIds::new(),
            stragglers: Mutex::new(Vec::new()),
        }
    }

    /// The faults this transport's calls take.
    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Starts a call of `address`'s `method` on a thread of its own, as a server would run it
    /// when delivered now: in a span that is a child of `trace`, with a deadline `timeout`
    /// from now. A queued fault is taken first: the call then fails instead of running.
    pub(crate) fn send(
        self: &Arc<Self>,
        address: &ServiceAddress,
        method: &str,
        body: Vec<u8>,
        codec: Codec,
        timeout: Duration,
        trace: &TraceContext,
    ) -> Result<LocalReply> {
        let deadline = Instant::now() + timeout;
        match self.faults.take() {
            None => {}
            Some(Fault::Unavailable) => return Err(Fault::unavailable(timeout)),
            Some(Fault::CallInterrupted) => {
                return Ok(LocalReply::settled(
                    self,
                    Some(Outcome::Interrupted(
                        "a fault injected by the test (testing::Fault::CallInterrupted)".to_owned(),
                    )),
                ))
            }
            Some(Fault::Timeout) => return Ok(LocalReply::settled(self, None)),
        }
        // What a server makes of the call's `traceparent`: a child span of the caller's.
        let received = trace.child();
        let queue = address.method_queue(method);
        let correlation_id = self.ids.next();
        let (address, method) = (address.clone(), method.to_owned());
        let run = Arc::clone(&self.run);
        let (reply_tx, reply_rx) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("fabric-local-call".to_owned())
            .spawn(move || {
                let observed = ServerCall::start(&address, &method, received);
                let mut context = CallContext::new(
                    &method,
                    &queue,
                    codec,
                    observed.trace().clone(),
                    Some(deadline),
                );
                context.correlation_id = Some(correlation_id);
                let answer = run(context, &observed, &body);
                observed.finish(answer.outcome);
                // The caller may have stopped waiting.
                let _ = reply_tx.send(answer.into_outcome());
            })
            .map_err(|e| Error::Spawn {
                thread: "fabric-local-call".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(LocalReply {
            transport: Arc::clone(self),
            reply: Some(reply_rx),
            thread: Some(thread),
            deadline,
            settled: None,
        })
    }

    /// Keeps the thread of a call nobody waits for any more, to join it later; joins those
    /// that have ended meanwhile.
    fn leave(&self, thread: JoinHandle<()>) {
        let mut stragglers = self.stragglers.lock();
        stragglers.push(thread);
        let (ended, running): (Vec<_>, Vec<_>) =
            stragglers.drain(..).partition(JoinHandle::is_finished);
        *stragglers = running;
        drop(stragglers);
        for thread in ended {
            let _ = thread.join();
        }
    }
}

impl Drop for LocalTransport {
    fn drop(&mut self) {
        let current = std::thread::current().id();
        for thread in self.stragglers.get_mut().drain(..) {
            // A call that held the last client itself cannot wait for its own end.
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }
}

/// A local call on its way: wait for its outcome, or drop it to forget the call.
pub(crate) struct LocalReply {
    transport: Arc<LocalTransport>,
    reply: Option<Receiver<Outcome>>,
    thread: Option<JoinHandle<()>>,
    deadline: Instant,
    /// The outcome of a call that ended before it was sent (an injected fault).
    settled: Option<Outcome>,
}

impl LocalReply {
    /// A call that has already ended with `outcome` (`None`: it timed out).
    fn settled(transport: &Arc<LocalTransport>, outcome: Option<Outcome>) -> LocalReply {
        LocalReply {
            transport: Arc::clone(transport),
            reply: None,
            thread: None,
            deadline: Instant::now(),
            settled: outcome,
        }
    }

    /// The outcome, or `None` when the deadline passed first.
    pub(crate) fn wait(mut self) -> Option<Outcome> {
        let Some(reply) = self.reply.take() else {
            return self.settled.take();
        };
        let outcome = reply.recv_deadline(self.deadline).ok();
        if outcome.is_some() {
            // It has sent its outcome: it is ending.
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        outcome
    }
}

impl Drop for LocalReply {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.transport.leave(thread);
        }
    }
}
