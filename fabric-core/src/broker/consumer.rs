//! A consumer on a thread of its own: the one way fabric's subscriptions take messages.
//!
//! The thread opens its own channel, declares what the subscription needs, consumes one
//! queue, and hands each delivery to a handler; it acks after the handler returns, so a
//! subscriber that dies mid-message gets it again. When the connection breaks it does all of
//! that again on the next one. Dropping the [`Subscription`] stops it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use amiquip::{AmqpProperties, Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery};
use crossbeam_channel::{bounded, select, Receiver};

use super::hold::Hold;
use super::link::Link;
use super::sessions::{run_sessions, Session, Start};
use super::topology::{self, Declaration};
use crate::error::{Error, Result};
use crate::thread::StoppableThread;

/// One message as a subscription handler receives it: the delivery's parts, owned.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub body: Vec<u8>,
    pub properties: AmqpProperties,
    pub routing_key: String,
    pub redelivered: bool,
}

/// What the consumer does with a message once its handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Handled: ack it.
    Ack,
    /// Not handled (the receiving side is gone): give it back to the queue for another
    /// consumer or a later subscriber.
    Requeue,
}

/// What a consumer thread declares and consumes.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSpec {
    /// The thread's name, for debuggers and panics.
    pub thread_name: String,
    /// Declared in order before consuming: the queue, its exchange, its bindings.
    pub declarations: Vec<Declaration>,
    /// The queue to consume.
    pub queue: String,
    /// Deliveries in flight to this consumer before it acks.
    pub prefetch: u16,
}

/// A running subscription. Dropping it (or [`close`](Self::close)) cancels the consumer,
/// lets the handler finish the messages already delivered, and stops its thread.
#[derive(Debug)]
#[must_use = "dropping a Subscription cancels it at once; keep it for as long as messages should come"]
pub struct Subscription {
    queue: String,
    thread: StoppableThread<Result<()>>,
    /// Keeps the connection open while a user's subscription uses it; none for fabric's
    /// own subscriptions, which the fabric itself owns.
    _hold: Hold,
}

impl Subscription {
    /// The queue this subscription consumes.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Stops the subscription: cancels the consumer, lets the handler finish the messages
    /// already delivered, and reports how its thread ended. Later calls return `Ok`.
    pub fn close(&self) -> Result<()> {
        // `None`: stopped before, or a handler closing its own subscription.
        self.thread.stop().unwrap_or(Ok(()))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            log::warn!(
                "fabric: subscription to {} ended with an error: {e}",
                self.queue
            );
        }
    }
}

/// Starts a consumer thread on `link`, which `hold` keeps open (none for subscriptions the
/// fabric itself owns, which must not hold it, or it would never drop); returns once it
/// consumes, or with the error that stopped it.
///
/// The thread declares and consumes again after every reconnection, so the subscription
/// outlives a broker restart; messages delivered but not yet acked when the connection broke
/// are redelivered by the broker (to this subscription again, for a durable queue).
pub(crate) fn spawn<H>(
    link: Arc<Link>,
    hold: Hold,
    spec: ConsumerSpec,
    handler: H,
) -> Result<Subscription>
where
    H: FnMut(Incoming) -> Disposition + Send + 'static,
{
    let (ready_tx, ready_rx) = bounded(1);
    let queue = spec.queue.clone();
    let thread = StoppableThread::spawn(&spec.thread_name.clone(), move |stopped| {
        let mut handler = handler;
        let what = format!("the subscription to {}", spec.queue);
        run_sessions(&link, &what, Start::Strict, &stopped, ready_tx, |session| {
            consume(session, &spec, &mut handler, &stopped)
        })
    })?;
    let subscription = Subscription {
        queue,
        thread,
        _hold: hold,
    };
    ready_rx.recv().unwrap_or(Err(Error::Closed))?;
    Ok(subscription)
}

/// One session: declares, consumes until told to stop (`Ok`) or the channel fails (`Err`).
fn consume<H>(
    session: &mut Session<'_>,
    spec: &ConsumerSpec,
    handler: &mut H,
    stop: &Receiver<()>,
) -> Result<()>
where
    H: FnMut(Incoming) -> Disposition,
{
    let channel = session.channel;
    let consumer = start(channel, spec)?;
    session.ready();
    let outcome = loop {
        select! {
            recv(stop) -> _ => break Ok(()),
            recv(consumer.receiver()) -> message => match message {
                Ok(ConsumerMessage::Delivery(delivery)) => {
                    if let Err(e) = handle(channel, &spec.queue, handler, delivery) {
                        break Err(e);
                    }
                }
                Ok(ConsumerMessage::ServerCancelled) => break Err(Error::Broker {
                    operation: format!("consume {}", spec.queue),
                    reason: "the broker cancelled the consumer (was the queue deleted?)".to_owned(),
                }),
                Ok(other) => break Err(Error::ConnectionLost { reason: format!("{other:?}") }),
                Err(_) => break Err(Error::ConnectionLost {
                    reason: "the consumer's stream ended".to_owned(),
                }),
            },
        }
    };
    // Cancel, then finish what was already delivered, before the consumer is dropped.
    if outcome.is_ok() && consumer.cancel().is_ok() {
        for message in consumer.receiver().iter() {
            match message {
                ConsumerMessage::Delivery(delivery) => {
                    let _ = handle(channel, &spec.queue, handler, delivery);
                }
                _ => break,
            }
        }
    }
    outcome
}

fn start<'a>(channel: &'a Channel, spec: &ConsumerSpec) -> Result<Consumer<'a>> {
    topology::declare(channel, &spec.declarations)?;
    channel
        .qos(0, spec.prefetch.max(1), false)
        .map_err(|e| Error::broker("set the prefetch", e))?;
    channel
        .basic_consume(spec.queue.as_str(), ConsumerOptions::default())
        .map_err(|e| Error::broker(format!("consume {}", spec.queue), e))
}

/// Runs the handler on one delivery and acks (or requeues) it. A panicking handler is logged
/// and the message acked all the same: redelivering it would only panic again.
fn handle<H: FnMut(Incoming) -> Disposition>(
    channel: &Channel,
    queue: &str,
    handler: &mut H,
    mut delivery: Delivery,
) -> Result<()> {
    // The parts move to the handler; the emptied delivery stays behind to be acked.
    let incoming = Incoming {
        body: std::mem::take(&mut delivery.body),
        properties: std::mem::take(&mut delivery.properties),
        routing_key: std::mem::take(&mut delivery.routing_key),
        redelivered: delivery.redelivered,
    };
    let disposition = catch_unwind(AssertUnwindSafe(|| handler(incoming))).unwrap_or_else(|_| {
        log::error!("fabric: a handler of {queue} panicked; the message is dropped");
        Disposition::Ack
    });
    match disposition {
        Disposition::Ack => delivery.ack(channel),
        Disposition::Requeue => delivery.nack(channel, true),
    }
    .map_err(|e| Error::broker("settle a message", e))
}
