//! One connection's share of the client side: the reply queue's consumer, the call channel,
//! the calls sent on it, and how replies and returns find their call. Its state is its own;
//! the reply thread and the waiting callers use it through its methods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use amiquip::{Channel, ConsumerMessage, Delivery, Publish, Return};
use crossbeam_channel::{bounded, select, Receiver, RecvError, Sender};
use parking_lot::Mutex;

use super::mailbox::{Mailbox, Readers};
use super::Outcome;
use crate::codec::Codec;
use crate::rpc::protocol;

/// Why a reply session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// The caller was stopped (the fabric closed).
    Closed,
    /// The connection or a channel of the session broke: why.
    Interrupted(String),
}

impl End {
    fn outcome(&self) -> Outcome {
        match self {
            End::Closed => Outcome::Closed,
            End::Interrupted(reason) => Outcome::Interrupted(reason.clone()),
        }
    }
}

/// Calls waiting for their reply, by correlation id, and whether replies can still come.
#[derive(Default)]
struct Pending {
    waiting: HashMap<String, Arc<Mailbox>>,
    /// Set when the session has ended: no reply can come any more. The first reason wins.
    ended: Option<End>,
}

/// What one read of the replies (by the leading caller) came to.
pub(super) enum Read {
    /// A reply, a return or the session's end was handled: look at the mailbox again.
    Handled,
    /// Nothing came before the deadline.
    TimedOut,
}

/// Everything of the client side that one connection carries: the reply queue and its
/// consumer's receiver, the channel calls are published on and its returns, and the calls
/// sent in this session. A pending call holds the session it was sent in, so the end of a
/// session fails exactly its own calls.
pub(super) struct ReplySession {
    /// The connection generation the session's channels belong to.
    generation: u64,
    /// The server-named, exclusive reply queue of this connection.
    reply_queue: String,
    /// Where calls are published; `None` once the session has ended.
    publish: Mutex<Option<Channel>>,
    pending: Mutex<Pending>,
    /// `pending.ended.is_some()`, readable without the lock on every reply: written after
    /// the waiting calls have their outcomes, so a leader that sees it finds its own.
    ended: AtomicBool,
    consumer: Receiver<ConsumerMessage>,
    returns: Receiver<Return>,
    /// Which waiting caller reads `consumer` and `returns`, and who waits meanwhile.
    readers: Readers,
    /// Dropped when the session ends, which wakes the reply thread and the leading caller.
    alive: Mutex<Option<Sender<()>>>,
    /// Disconnected when the session ends.
    ending: Receiver<()>,
}

impl ReplySession {
    /// A session of connection `generation`: replies come on `consumer` (of `reply_queue`),
    /// calls go out on `publish`, whose returns come on `returns`.
    pub(super) fn new(
        generation: u64,
        reply_queue: String,
        publish: Channel,
        consumer: Receiver<ConsumerMessage>,
        returns: Receiver<Return>,
    ) -> ReplySession {
        let (alive, ending) = bounded::<()>(0);
        ReplySession {
            generation,
            reply_queue,
            publish: Mutex::new(Some(publish)),
            pending: Mutex::new(Pending::default()),
            ended: AtomicBool::new(false),
            consumer,
            returns,
            readers: Readers::default(),
            alive: Mutex::new(Some(alive)),
            ending,
        }
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn reply_queue(&self) -> &str {
        &self.reply_queue
    }

    /// Disconnects when the session ends.
    pub(super) fn ending(&self) -> &Receiver<()> {
        &self.ending
    }

    /// Who reads the replies, and who waits.
    pub(super) fn readers(&self) -> &Readers {
        &self.readers
    }

    pub(super) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Why the session ended, once it has.
    pub(super) fn end_reason(&self) -> Option<End> {
        self.pending.lock().ended.clone()
    }

    /// Registers a call; `false` if the session has ended (nothing was registered).
    pub(super) fn register(&self, correlation_id: &str, mailbox: Arc<Mailbox>) -> bool {
        let mut pending = self.pending.lock();
        if pending.ended.is_some() {
            return false;
        }
        pending.waiting.insert(correlation_id.to_owned(), mailbox);
        true
    }

    /// Forgets a call (its caller gave up); `true` if it was still waiting, `false` if its
    /// outcome was handed over already (it is in its mailbox, or about to be).
    pub(super) fn forget(&self, correlation_id: &str) -> bool {
        self.pending.lock().waiting.remove(correlation_id).is_some()
    }

    /// Publishes a call; `Err` (with why) if it was not sent.
    pub(super) fn publish(&self, call: Publish<'_>) -> std::result::Result<(), String> {
        let publish = self.publish.lock();
        // Checked under the publish lock: a session that has ended takes no more calls.
        if self.is_ended() {
            return Err("the connection's reply session ended".to_owned());
        }
        let channel = publish
            .as_ref()
            .ok_or_else(|| "the call channel is closed".to_owned())?;
        // The default exchange routes by queue name; publishing there (not to the service's
        // exchange) makes a missing service a return, not a channel-closing NOT_FOUND.
        channel.basic_publish("", call).map_err(|e| e.to_string())
    }

    /// Reads one reply, return or the session's end, until `deadline`, and hands it to the
    /// call it concerns: what the leading caller does.
    pub(super) fn read(&self, deadline: Instant) -> Read {
        select! {
            recv(self.consumer) -> message => self.take(message),
            recv(self.returns) -> returned => match returned {
                Ok(returned) => self.take_return(returned),
                Err(_) => self.end(End::Interrupted("the call channel closed".to_owned())),
            },
            recv(self.ending) -> _ => {}
            default(deadline.saturating_duration_since(Instant::now())) => return Read::TimedOut,
        }
        Read::Handled
    }

    /// Ends the session: fails every waiting call, refuses new ones, and wakes the reply
    /// thread. The first reason given is the one every call gets.
    pub(super) fn end(&self, end: End) {
        let mut pending = self.pending.lock();
        let end = match &pending.ended {
            Some(first) => first.clone(),
            None => {
                if let End::Interrupted(reason) = &end {
                    log::warn!(
                        "fabric: RPC replies of connection {} stopped ({reason}); {} calls in \
                         flight are interrupted",
                        self.generation,
                        pending.waiting.len()
                    );
                }
                pending.ended = Some(end.clone());
                end
            }
        };
        for (_, waiter) in pending.waiting.drain() {
            waiter.post_outcome(end.outcome());
        }
        // After the outcomes: a leader that sees the flag finds its own.
        self.ended.store(true, Ordering::Release);
        drop(pending);
        self.alive.lock().take();
    }

    /// Closes the call channel, once the session has ended.
    pub(super) fn close_publishing(&self) {
        if let Some(publish) = self.publish.lock().take() {
            let _ = publish.close();
        }
    }

    /// Hands one message from the reply queue to the call it answers.
    fn take(&self, message: Result<ConsumerMessage, RecvError>) {
        match message {
            Ok(ConsumerMessage::Delivery(delivery)) => self.route_reply(delivery),
            Ok(ConsumerMessage::ServerCancelled) => self.end(End::Interrupted(
                "the broker cancelled the reply queue's consumer".to_owned(),
            )),
            Ok(other) => self.end(End::Interrupted(format!(
                "the reply queue stopped: {other:?}"
            ))),
            Err(RecvError) => self.end(End::Interrupted(
                "the connection carrying the replies ended".to_owned(),
            )),
        }
    }

    fn route_reply(&self, delivery: Delivery) {
        let Some(id) = delivery.properties.correlation_id().as_deref() else {
            log::warn!("fabric: dropped a reply without correlation id");
            return;
        };
        let content_type = delivery.properties.content_type().as_deref();
        let codec = Codec::from_content_type(content_type);
        let outcome = match delivery.properties.type_().as_deref() {
            Some(protocol::TYPE_ERROR) => Outcome::Failed {
                codec,
                body: delivery.body,
            },
            // Our own call, dead-lettered from its queue after it expired.
            Some(protocol::TYPE_CALL) => Outcome::Expired,
            _ => match codec {
                Some(codec) => Outcome::Result {
                    codec,
                    body: delivery.body,
                },
                None => Outcome::Undecodable {
                    content_type: content_type.map(str::to_owned),
                },
            },
        };
        self.deliver(id, outcome);
    }

    fn take_return(&self, returned: Return) {
        if let Some(id) = returned.properties.correlation_id().as_deref() {
            self.deliver(id, Outcome::Returned);
        }
    }

    fn deliver(&self, id: &str, outcome: Outcome) {
        // A call that timed out has left the map; its late reply is dropped here.
        let waiter = self.pending.lock().waiting.remove(id);
        if let Some(waiter) = waiter {
            // Posted outside the lock: it may wake a thread.
            waiter.post_outcome(outcome);
        }
    }
}
