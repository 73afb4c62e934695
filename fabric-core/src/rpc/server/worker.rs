//! A server's worker: one thread, one channel at a time (a session per connection),
//! consuming every method queue of the service.
//!
//! A worker decodes, runs the user's method, publishes the reply and then acks: a worker that
//! dies before the ack leaves the call to be redelivered to another consumer.

use std::sync::Arc;
use std::time::Instant;

use amiquip::{Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery, Publish};
use crossbeam_channel::{Receiver, Select, Sender};

use super::readiness::Readiness;
use crate::address::ServiceAddress;
use crate::broker::link::Link;
use crate::broker::sessions::{run_sessions, Session, Start};
use crate::broker::topology::{self, Declaration};
use crate::codec::{Codec, BINCODE_CONTENT_TYPE};
use crate::error::{Error, Result};
use crate::observe::ServerCall;
use crate::registry::ServerLoad;
use crate::rpc::answer::{self, Answer};
use crate::rpc::context::CallContext;
use crate::rpc::dispatch::Dispatch;
use crate::rpc::protocol::{self, error_kind};
use crate::trace::TraceContext;

/// What all workers of a server share.
pub(super) struct WorkerShared {
    pub(super) address: ServiceAddress,
    /// Method names, `health_check` last; a consumer's index is its method's index.
    pub(super) methods: Vec<&'static str>,
    /// The method queues, in the same order.
    pub(super) queues: Vec<String>,
    /// What `serve` declared, declared again by each worker after a reconnection.
    pub(super) declarations: Vec<Declaration>,
    pub(super) load: Arc<ServerLoad>,
    pub(super) readiness: Arc<Readiness>,
    pub(super) link: Arc<Link>,
}

/// One worker of a server: its thread's body, a session per connection.
pub(super) struct Worker<D> {
    pub(super) index: usize,
    pub(super) dispatcher: Arc<D>,
    pub(super) shared: Arc<WorkerShared>,
    pub(super) prefetch: u16,
}

impl<D: Dispatch> Worker<D> {
    /// The thread's body: sessions until told to stop (`Ok`) or the fabric closes. `ready`
    /// hears how the first went.
    pub(super) fn run(&self, stop: &Receiver<()>, ready: Sender<Result<()>>) -> Result<()> {
        let what = format!("worker {} of {}", self.index, self.shared.address);
        run_sessions(
            &self.shared.link,
            &what,
            Start::Strict,
            stop,
            ready,
            |session| self.session(session, stop),
        )
    }

    /// One session: consumes every method queue on the session's channel until told to stop
    /// (`Ok`, after draining) or the channel fails (`Err`, and `run_sessions` starts over).
    fn session(&self, session: &mut Session<'_>, stop: &Receiver<()>) -> Result<()> {
        let channel = session.channel;
        let generation = session.generation;
        if session.restart {
            // Auto-delete: the exchange and queues went with the last connection (or broker).
            topology::declare(channel, &self.shared.declarations)?;
        }
        // Global: the limit covers the whole channel, not each of its consumers.
        channel
            .qos(0, self.prefetch, true)
            .map_err(|e| Error::broker("set the prefetch", e))?;
        let consumers = self.consume(channel)?;
        // Marked before `ready`, so a server is serving as soon as `serve` returns.
        let _consuming = self.shared.readiness.consuming(self.index, generation);
        session.ready();
        let outcome = self.serve(channel, &consumers, stop);
        if let Err(e) = &outcome {
            log::warn!(
                "fabric: worker {} of {} stops consuming: {e}",
                self.index,
                self.shared.address
            );
        }
        self.drain(channel, &consumers);
        outcome
    }

    /// Consumes every method queue. On failure the consumers already made are cancelled
    /// (not merely dropped: the channel may still live).
    fn consume<'c>(&self, channel: &'c Channel) -> Result<Vec<Consumer<'c>>> {
        let mut consumers = Vec::with_capacity(self.shared.queues.len());
        for queue in &self.shared.queues {
            match channel.basic_consume(queue.as_str(), ConsumerOptions::default()) {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    self.drain(channel, &consumers);
                    return Err(Error::broker(format!("consume {queue}"), e));
                }
            }
        }
        Ok(consumers)
    }

    /// Takes calls until told to stop (`Ok`) or a consumer or the channel fails (`Err`).
    fn serve(
        &self,
        channel: &Channel,
        consumers: &[Consumer<'_>],
        stop: &Receiver<()>,
    ) -> Result<()> {
        let mut select = Select::new();
        for consumer in consumers {
            select.recv(consumer.receiver());
        }
        let stop_index = select.recv(stop);
        loop {
            let operation = select.select();
            let index = operation.index();
            if index == stop_index {
                let _ = operation.recv(stop);
                return Ok(());
            }
            match operation.recv(consumers[index].receiver()) {
                Ok(ConsumerMessage::Delivery(delivery)) => {
                    self.answer(channel, index, delivery)?;
                }
                Ok(ConsumerMessage::ServerCancelled) => {
                    return Err(Error::Broker {
                        operation: format!("consume {}", self.shared.queues[index]),
                        reason: "the broker cancelled the consumer (was the queue deleted?)"
                            .to_owned(),
                    })
                }
                Ok(other) => {
                    return Err(Error::ConnectionLost {
                        reason: format!("{other:?}"),
                    })
                }
                Err(_) => {
                    return Err(Error::ConnectionLost {
                        reason: "the consumer's stream ended".to_owned(),
                    })
                }
            }
        }
    }

    /// Cancels every consumer and answers the calls the broker had already sent, so none is
    /// left unanswered; then nothing more can arrive and the consumers can be dropped.
    ///
    /// A consumer whose cancel fails is on a dead channel or connection: its calls cannot be
    /// acked any more and the broker gives them to another consumer, so they are not run
    /// here (that would run them twice), and dropping it is safe (no I/O thread sends to it).
    fn drain(&self, channel: &Channel, consumers: &[Consumer<'_>]) {
        let mut failed = false;
        for (index, consumer) in consumers.iter().enumerate() {
            if failed || consumer.cancel().is_err() {
                failed = true;
                continue;
            }
            for message in consumer.receiver().iter() {
                match message {
                    ConsumerMessage::Delivery(delivery) if !failed => {
                        if let Err(e) = self.answer(channel, index, delivery) {
                            log::warn!(
                                "fabric: worker {} of {} could not finish a call: {e}",
                                self.index,
                                self.shared.address
                            );
                            failed = true;
                        }
                    }
                    ConsumerMessage::Delivery(_) => {}
                    _ => break,
                }
            }
        }
    }

    /// Runs one call, publishes its reply, then acks it. `Err` only when the reply or the ack
    /// could not be sent (the channel or connection died): the call is then not acked, and
    /// the broker redelivers it.
    fn answer(&self, channel: &Channel, index: usize, delivery: Delivery) -> Result<()> {
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
            return ack(channel, queue, correlation_id, delivery);
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
        if let Err(e) = channel.basic_publish("", reply) {
            let error = Error::broker("publish a reply", e);
            log::warn!(
                "fabric: the reply to {queue} call {correlation_id:?} was not sent ({error}); \
                 the call is not acked, so the broker will deliver it again"
            );
            return Err(error);
        }
        ack(channel, queue, correlation_id, delivery)
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

/// Acks a call; a failure means the channel or connection died, and the broker will deliver
/// the call again.
fn ack(
    channel: &Channel,
    queue: &str,
    correlation_id: Option<String>,
    delivery: Delivery,
) -> Result<()> {
    delivery.ack(channel).map_err(|e| {
        let error = Error::broker("ack a call", e);
        log::warn!(
            "fabric: the ack of {queue} call {correlation_id:?} failed ({error}); the broker \
             will deliver it again"
        );
        error
    })
}
