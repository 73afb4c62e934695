//! A server's worker: one thread that runs calls. It owns no channel: it takes calls from
//! the receivers of its server's current shift (`intake.rs`), publishes each reply on the
//! shift's reply channel and hands the call back to the intake to be acked.
//!
//! A worker decodes, runs the user's method, publishes the reply, and only then has the
//! call acked: an instance that dies before the ack leaves the call to be redelivered to
//! another consumer.

use std::sync::Arc;
use std::time::Instant;

use amiquip::{ConsumerMessage, Delivery, Publish};
use crossbeam_channel::{select, Receiver, Select};

use super::intake::{Done, Shift};
use super::Shared;
use crate::codec::{Codec, BINCODE_CONTENT_TYPE};
use crate::observe::ServerCall;
use crate::rpc::answer::{self, Answer};
use crate::rpc::context::CallContext;
use crate::rpc::dispatch::Dispatch;
use crate::rpc::protocol::{self, error_kind};
use crate::trace::TraceContext;

/// One worker of a server.
pub(super) struct Worker<D> {
    pub(super) dispatcher: Arc<D>,
    pub(super) shared: Arc<Shared>,
}

impl<D: Dispatch> Worker<D> {
    /// The thread's body: works each shift it is given until told to stop between shifts.
    /// (The intake ends a shift first, so a stop never leaves a call unanswered.)
    pub(super) fn run(&self, shifts: &Receiver<Arc<Shift>>, stop: &Receiver<()>) {
        loop {
            let shift = select! {
                recv(shifts) -> shift => match shift {
                    Ok(shift) => shift,
                    Err(_) => return,
                },
                recv(stop) -> _ => return,
            };
            let _leaving = Leaving(&shift);
            self.work(&shift);
        }
    }

    /// Takes calls from every method queue of the shift until all their receivers have
    /// ended (the intake cancelled the consumers, or the channel or connection broke).
    fn work(&self, shift: &Shift) {
        let mut select = Select::new();
        for calls in &shift.calls {
            select.recv(calls);
        }
        let mut open = shift.calls.len();
        while open > 0 {
            let operation = select.select();
            let index = operation.index();
            match operation.recv(&shift.calls[index]) {
                Ok(ConsumerMessage::Delivery(delivery)) => {
                    // A dead shift's calls go back to the broker: not run here.
                    if !shift.is_dead() {
                        self.answer(shift, index, delivery);
                    }
                }
                other => {
                    if matches!(other, Ok(ConsumerMessage::ServerCancelled)) {
                        shift.report(Done::Cancelled(index));
                    }
                    // Nothing more comes on this receiver.
                    select.remove(index);
                    open -= 1;
                }
            }
        }
    }

    /// Runs one call, publishes its reply, then hands the call to the intake to be acked. A
    /// call whose reply could not be sent is not acked: the broker delivers it again.
    fn answer(&self, shift: &Shift, index: usize, mut delivery: Delivery) {
        let queue = &self.shared.queues[index];
        let properties = &delivery.properties;
        let correlation_id = properties.correlation_id().clone();
        let Some(reply_to) = properties.reply_to().as_deref() else {
            log::warn!(
                "fabric: {queue} got a message without reply_to (correlation id \
                 {correlation_id:?}, type {:?}); not run, as nobody could get its outcome; \
                 dropped",
                properties.type_()
            );
            shift.answered(delivery);
            return;
        };
        // The call's own span, a child of its caller's: the handler runs in it, the reply
        // comes from it.
        let trace = TraceContext::received(properties.headers().as_ref());
        let observed = ServerCall::start(&self.shared.address, self.shared.methods[index], trace);
        let answer = match properties.type_().as_deref() {
            Some(kind) if kind != protocol::TYPE_CALL => {
                log::warn!(
                    "fabric: {queue} got a message of type {kind:?} (correlation id \
                     {correlation_id:?}); not a call, not run"
                );
                Answer::failure(
                    error_kind::BAD_REQUEST,
                    format!("a message of type {kind:?} is not a call (type \"call\")"),
                )
            }
            _ => match protocol::deadline_of(properties) {
                Ok(deadline) => self.run_call(index, &delivery, &observed, deadline),
                // Held in this worker's prefetch, or in the broker, past the caller's
                // deadline: the caller has given up, so it is not run.
                Err(()) => {
                    log::debug!(
                        "fabric: {queue} call {correlation_id:?} came after its deadline; not run"
                    );
                    Answer::failure(
                        error_kind::DEADLINE_EXCEEDED,
                        "the call's deadline passed before a worker could start it".to_owned(),
                    )
                }
            },
        };
        let properties = protocol::reply_properties(
            correlation_id.clone(),
            answer.kind,
            answer.content_type,
            observed.trace(),
        );
        let reply = Publish::with_properties(&answer.body, reply_to, properties);
        observed.finish(answer.outcome);
        if let Err(reason) = shift.publish_reply(reply) {
            log::warn!(
                "fabric: the reply to {queue} call {correlation_id:?} was not sent ({reason}); \
                 the call is not acked, so the broker will deliver it again"
            );
            shift.report(Done::ReplyFailed(reason));
            return;
        }
        // The intake acks it; the body is not needed any more.
        delivery.body = Vec::new();
        shift.answered(delivery);
    }

    /// Runs one call with its [`CallContext`] current: in the span of `observed`, until
    /// `deadline`.
    fn run_call(
        &self,
        index: usize,
        delivery: &Delivery,
        observed: &ServerCall,
        deadline: Option<Instant>,
    ) -> Answer {
        let method = self.shared.methods[index];
        let properties = &delivery.properties;
        let content_type = properties.content_type().as_deref();
        let Some(codec) = Codec::from_content_type(content_type) else {
            return Answer::failure(
                error_kind::BAD_REQUEST,
                format!(
                    "content type {content_type:?} is not one fabric reads (application/json or {})",
                    BINCODE_CONTENT_TYPE
                ),
            );
        };
        let mut context = CallContext::new(
            method,
            &self.shared.queues[index],
            codec,
            observed.trace().clone(),
            deadline,
        );
        context.correlation_id = properties.correlation_id().clone();
        context.reply_to = properties.reply_to().clone();
        context.redelivered = delivery.redelivered;
        self.shared.load.call_started();
        let answer = answer::run_call(&*self.dispatcher, context, observed, &delivery.body);
        self.shared.load.call_finished();
        answer
    }
}

/// Tells the intake that a worker left its shift when dropped, so that even a worker that
/// unwinds (a panic in fabric's code: the user's is caught) does not leave a closing server
/// waiting for it.
struct Leaving<'a>(&'a Shift);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.report(Done::Left);
    }
}
