//! The client side of RPC: one reply queue and one publishing channel per
//! [`Fabric`](crate::Fabric), shared by all its clients.
//!
//! Callers publish their calls themselves on a channel behind a mutex: amiquip's `Channel`
//! is `Send` but not `Sync`, and the mutex makes one publish at a time while sparing every
//! call a hop through another thread (a wake-up on the latency path).
//!
//! Replies are read by the callers too (leader and followers). The reply thread owns the
//! consuming channel and its consumer (which borrows it) but reads nothing while it runs. Of
//! the callers waiting, one leads: it reads the consumer's receiver and hands each reply to
//! its caller's one-shot channel by correlation id (`pending`); the others sleep on their own
//! channel. When the leader's own reply comes it leaves and passes a token to a follower. A
//! sequential caller so gets its reply straight from amiquip's I/O thread, and under load a
//! reply wakes one thread, the one it answers, while the leader keeps reading.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{
    Channel, ConsumerMessage, ConsumerOptions, Delivery, Publish, QueueDeclareOptions, Return,
};
use crossbeam_channel::{bounded, select, Receiver, RecvError, Sender};
use parking_lot::Mutex;

use super::protocol::{self, CorrelationIds};
use crate::broker::topology::{self, Declaration};
use crate::thread::StoppableThread;
use crate::{Codec, Error, Result};

/// How a call ended, as the reply thread saw it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A `result` reply: the encoded return value.
    Result { codec: Codec, body: Vec<u8> },
    /// An `error` reply from the server.
    Failed { kind: String, message: String },
    /// The broker could not route the call: no queue for that method.
    Returned,
    /// The call expired in its queue and was dead-lettered back to us.
    Expired,
    /// The reply thread ended before a reply came: [`Error::Closed`] when the fabric was
    /// closed, [`Error::ConnectionLost`] when the connection broke.
    Ended(Error),
}

/// Calls waiting for their reply, by correlation id, and whether replies can still come.
#[derive(Default)]
struct Pending {
    waiting: HashMap<String, Sender<Outcome>>,
    /// Set when the reply queue's consumer has ended: no reply can come any more.
    ended: Option<Error>,
}

/// What callers share to wait for replies: the pending calls and the two streams a reply
/// can come from (replies and dead-lettered calls; returned calls).
struct Replies {
    pending: Mutex<Pending>,
    consumer: Receiver<ConsumerMessage>,
    returns: Receiver<Return>,
    /// Held by the one waiting caller that reads `consumer` and `returns` (the leader);
    /// the others wait on their own channel only, so a reply wakes at most the thread that
    /// reads it and the thread it answers.
    leader: Mutex<()>,
    /// A token passed on when the leader leaves, so that a waiting caller takes over.
    vacancy: (Sender<()>, Receiver<()>),
}

impl Replies {
    /// Hands one message from the reply queue to the call it answers.
    fn take(&self, message: Result<ConsumerMessage, RecvError>) {
        match message {
            Ok(ConsumerMessage::Delivery(delivery)) => route_reply(&self.pending, delivery),
            Ok(ConsumerMessage::ClientCancelled) | Ok(ConsumerMessage::ClientClosedChannel) => {
                self.end(Error::Closed)
            }
            Ok(other) => self.end(lost(format!("the reply queue stopped: {other:?}"))),
            Err(RecvError) => self.end(Error::Closed),
        }
    }

    /// Fails every waiting call with `error`, and refuses new ones.
    fn end(&self, error: Error) {
        let mut pending = self.pending.lock();
        if pending.ended.is_none() {
            if error != Error::Closed {
                log::error!("fabric: RPC replies stopped: {error}");
            }
            pending.ended = Some(error.clone());
        }
        for (_, waiter) in pending.waiting.drain() {
            let _ = waiter.send(Outcome::Ended(error.clone()));
        }
    }
}

/// A call on its way: wait for its outcome, or drop it to forget the call.
pub(crate) struct PendingReply {
    replies: Arc<Replies>,
    correlation_id: String,
    reply: Receiver<Outcome>,
    deadline: Instant,
}

impl PendingReply {
    /// The outcome, or `None` when the deadline passed first.
    pub(crate) fn wait(self) -> Option<Outcome> {
        let replies = &*self.replies;
        loop {
            let finished = match replies.leader.try_lock() {
                Some(leadership) => {
                    let finished = self.lead(replies);
                    drop(leadership);
                    // Whoever waits next reads the replies: hand over (at most one token).
                    let _ = replies.vacancy.0.try_send(());
                    finished
                }
                None => self.follow(replies),
            };
            if let Some(outcome) = finished {
                return outcome;
            }
        }
    }

    /// As the leader: reads replies for everyone until ours comes or our time is up.
    fn lead(&self, replies: &Replies) -> Option<Option<Outcome>> {
        loop {
            select! {
                recv(self.reply) -> outcome => return Some(outcome.ok()),
                recv(replies.consumer) -> message => replies.take(message),
                recv(replies.returns) -> returned => match returned {
                    Ok(returned) => route_return(&replies.pending, returned),
                    Err(_) => replies.end(lost("the call channel closed".to_owned())),
                },
                default(self.deadline.saturating_duration_since(Instant::now())) => {
                    return Some(self.timed_out());
                }
            }
            // Once the stream has ended, our outcome is already in our own channel.
            if replies.pending.lock().ended.is_some() {
                return Some(self.reply.try_recv().ok());
            }
        }
    }

    /// As a follower: waits for our outcome, or for the leader to leave (then `None`, to
    /// try to lead).
    fn follow(&self, replies: &Replies) -> Option<Option<Outcome>> {
        select! {
            recv(self.reply) -> outcome => Some(outcome.ok()),
            recv(replies.vacancy.1) -> _ => None,
            default(self.deadline.saturating_duration_since(Instant::now())) => {
                Some(self.timed_out())
            }
        }
    }

    /// The deadline passed: leave the pending map, unless the reply was handed over just now.
    fn timed_out(&self) -> Option<Outcome> {
        let removed = self
            .replies
            .pending
            .lock()
            .waiting
            .remove(&self.correlation_id);
        match removed {
            Some(_) => None,
            None => self.reply.try_recv().ok(),
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        // After an outcome the entry is gone already; this matters for abandoned calls.
        self.replies
            .pending
            .lock()
            .waiting
            .remove(&self.correlation_id);
    }
}

/// The client side of RPC for one connection.
pub(crate) struct Caller {
    /// Where calls are published; `None` once stopped.
    publish: Mutex<Option<Channel>>,
    replies: Arc<Replies>,
    reply_queue: String,
    ids: CorrelationIds,
    /// Owns the reply queue's channel and consumer.
    thread: StoppableThread,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("reply_queue", &self.reply_queue)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Declares the reply queue on `channel` and starts the reply thread, which then owns
    /// it; calls are published on `publish`, whose returns the reply thread routes too.
    pub(crate) fn start(channel: Channel, publish: Channel) -> Result<Caller> {
        // A server-named queue, as aio-pika's: exclusive so it dies with the connection.
        let reply_queue = channel
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
            )
            .map_err(|e| Error::broker("declare the reply queue", e))?
            .name()
            .to_owned();
        topology::declare(&channel, &reply_topology(&reply_queue))?;

        let returns = publish
            .listen_for_returns()
            .map_err(|e| Error::broker("listen for returned calls", e))?;
        let (ready_tx, ready_rx) = bounded(1);
        let queue = reply_queue.clone();
        let thread = StoppableThread::spawn("fabric-replies", move |stopped| {
            reply_thread(channel, queue, stopped, ready_tx)
        })?;
        // The thread reports whether it could start consuming, and hands over the receiver.
        let consumer = ready_rx.recv().unwrap_or_else(|_| {
            Err(Error::Broker {
                operation: "start the reply thread".to_owned(),
                reason: "it ended before it started consuming".to_owned(),
            })
        })?;
        let replies = Arc::new(Replies {
            pending: Mutex::new(Pending::default()),
            consumer,
            returns,
            leader: Mutex::new(()),
            vacancy: bounded(1),
        });
        Ok(Caller {
            publish: Mutex::new(Some(publish)),
            replies,
            reply_queue,
            ids: CorrelationIds::new(),
            thread,
        })
    }

    /// Publishes a call to the queue `routing_key`; the reply is awaited on the returned
    /// handle, so one thread may have many calls in flight.
    pub(crate) fn send(
        &self,
        routing_key: String,
        body: Vec<u8>,
        codec: Codec,
        timeout: Duration,
    ) -> Result<PendingReply> {
        let correlation_id = self.ids.next();
        let (reply_tx, reply_rx) = bounded(1);
        {
            let mut pending = self.replies.pending.lock();
            if let Some(ended) = &pending.ended {
                return Err(ended.clone());
            }
            pending.waiting.insert(correlation_id.clone(), reply_tx);
        }
        // From here on, dropping the handle takes the entry out of the map again.
        let reply = PendingReply {
            replies: Arc::clone(&self.replies),
            correlation_id,
            reply: reply_rx,
            deadline: Instant::now() + timeout,
        };
        let properties = protocol::call_properties(
            reply.correlation_id.clone(),
            &self.reply_queue,
            codec,
            timeout,
        );
        let call = Publish {
            body: &body,
            routing_key,
            // Unroutable calls come back at once instead of timing out.
            mandatory: true,
            immediate: false,
            properties,
        };
        // The default exchange routes by queue name; publishing there (not to the service's
        // exchange) makes a missing service a return, not a channel-closing NOT_FOUND.
        let publish = self.publish.lock();
        let channel = publish.as_ref().ok_or(Error::Closed)?;
        channel
            .basic_publish("", call)
            .map_err(|e| Error::broker("publish a call", e))?;
        Ok(reply)
    }

    /// Stops the reply thread; calls still waiting fail with [`Error::Closed`].
    pub(crate) fn stop(&self) {
        self.replies.end(Error::Closed);
        self.thread.stop();
        if let Some(channel) = self.publish.lock().take() {
            let _ = channel.close();
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the reply queue needs besides itself: the dead-letter exchange, and a binding that
/// brings our expired calls back (they carry our queue name in the `From` header).
fn reply_topology(reply_queue: &str) -> Vec<Declaration> {
    vec![
        topology::rpc_dead_letter_exchange(),
        Declaration::Binding {
            queue: reply_queue.to_owned(),
            exchange: topology::RPC_DLX.to_owned(),
            routing_key: String::new(),
            arguments: topology::string_table([("From", reply_queue), ("x-match", "any")]),
        },
    ]
}

/// Owns the reply queue's channel and consumer, which callers read through a clone of its
/// receiver, until told to stop; then cancels the consumer before dropping it, so amiquip's
/// I/O thread never sends to a dropped consumer.
fn reply_thread(
    channel: Channel,
    reply_queue: String,
    stop: Receiver<()>,
    ready: Sender<Result<Receiver<ConsumerMessage>>>,
) {
    let options = ConsumerOptions {
        no_ack: true,
        exclusive: true,
        ..ConsumerOptions::default()
    };
    let consumer = match channel.basic_consume(reply_queue.as_str(), options) {
        Ok(consumer) => consumer,
        Err(e) => {
            let _ = ready.send(Err(Error::broker("consume the reply queue", e)));
            return;
        }
    };
    let _ = ready.send(Ok(consumer.receiver().clone()));
    let _ = stop.recv();
    if consumer.cancel().is_ok() {
        // Callers may take the cancel-ok themselves; the receiver then disconnects, or at
        // worst this waits a bounded time.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(message) = consumer.receiver().recv_deadline(deadline) {
            if matches!(message, ConsumerMessage::ClientCancelled) {
                break;
            }
        }
    }
    drop(consumer);
    let _ = channel.close();
}

fn lost(reason: String) -> Error {
    Error::ConnectionLost { reason }
}

fn route_reply(pending: &Mutex<Pending>, delivery: Delivery) {
    let Some(id) = delivery.properties.correlation_id().as_deref() else {
        log::warn!("fabric: dropped a reply without correlation id");
        return;
    };
    let outcome = match delivery.properties.type_().as_deref() {
        Some(protocol::TYPE_ERROR) => {
            let (kind, message) = protocol::decode_error(&delivery.body);
            Outcome::Failed { kind, message }
        }
        // Our own call, dead-lettered from its queue after it expired.
        Some(protocol::TYPE_CALL) => Outcome::Expired,
        _ => match Codec::from_content_type(delivery.properties.content_type().as_deref()) {
            Some(codec) => Outcome::Result {
                codec,
                body: delivery.body,
            },
            None => Outcome::Failed {
                kind: protocol::error_kind::BAD_REQUEST.to_owned(),
                message: format!(
                    "the reply has content type {:?}, which fabric cannot decode",
                    delivery.properties.content_type()
                ),
            },
        },
    };
    deliver(pending, id, outcome);
}

fn route_return(pending: &Mutex<Pending>, returned: Return) {
    if let Some(id) = returned.properties.correlation_id().as_deref() {
        deliver(pending, id, Outcome::Returned);
    }
}

fn deliver(pending: &Mutex<Pending>, id: &str, outcome: Outcome) {
    // A call that timed out has left the map; its late reply is dropped here.
    if let Some(waiter) = pending.lock().waiting.remove(id) {
        let _ = waiter.send(outcome);
    }
}
