//! One connection's share of the client side: the reply queue's consumer, the call channel,
//! the calls sent on it, and how replies and returns find their call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use amiquip::{Channel, ConsumerMessage, Delivery, Publish, Return};
use crossbeam_channel::{Receiver, RecvError, Sender};
use parking_lot::Mutex;

use super::waiting::{Mailbox, Readers};
use super::Outcome;
use crate::rpc::protocol;
use crate::Codec;

/// Why a reply session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// The caller was stopped (the fabric closed).
    Closed,
    /// The connection or a channel of the session broke: why.
    Interrupted(String),
}

impl End {
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            End::Closed => Outcome::Closed,
            End::Interrupted(reason) => Outcome::Interrupted(reason.clone()),
        }
    }
}

/// Calls waiting for their reply, by correlation id, and whether replies can still come.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) waiting: HashMap<String, Arc<Mailbox>>,
    /// Set when the session has ended: no reply can come any more. The first reason wins.
    pub(super) ended: Option<End>,
}

/// Everything of the client side that one connection carries: the reply queue and its
/// consumer's receiver, the channel calls are published on and its returns, and the calls
/// sent in this session. A [`PendingReply`] holds the session it was sent in, so the end of a
/// session fails exactly its own calls.
pub(super) struct ReplySession {
    /// The connection generation the session's channels belong to.
    pub(super) generation: u64,
    /// The server-named, exclusive reply queue of this connection.
    pub(super) reply_queue: String,
    /// Where calls are published; `None` once the session has ended.
    pub(super) publish: Mutex<Option<Channel>>,
    pub(super) pending: Mutex<Pending>,
    /// `pending.ended.is_some()`, readable without the lock on every reply.
    pub(super) ended: AtomicBool,
    pub(super) consumer: Receiver<ConsumerMessage>,
    pub(super) returns: Receiver<Return>,
    /// Which waiting caller reads `consumer` and `returns`, and who waits meanwhile.
    pub(super) readers: Mutex<Readers>,
    /// Dropped when the session ends, which wakes the reply thread to start the next one
    /// and the leading caller.
    pub(super) alive: Mutex<Option<Sender<()>>>,
    /// Disconnected when the session ends.
    pub(super) ending: Receiver<()>,
}

impl ReplySession {
    /// Hands one message from the reply queue to the call it answers.
    pub(super) fn take(&self, message: Result<ConsumerMessage, RecvError>) {
        match message {
            Ok(ConsumerMessage::Delivery(delivery)) => route_reply(&self.pending, delivery),
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

    pub(super) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Registers a call; `false` if the session has ended (nothing was registered).
    pub(super) fn register(&self, correlation_id: &str, reply: Arc<Mailbox>) -> bool {
        let mut pending = self.pending.lock();
        if pending.ended.is_some() {
            return false;
        }
        pending.waiting.insert(correlation_id.to_owned(), reply);
        true
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
}

fn route_reply(pending: &Mutex<Pending>, delivery: Delivery) {
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
    deliver(pending, id, outcome);
}

pub(super) fn route_return(pending: &Mutex<Pending>, returned: Return) {
    if let Some(id) = returned.properties.correlation_id().as_deref() {
        deliver(pending, id, Outcome::Returned);
    }
}

fn deliver(pending: &Mutex<Pending>, id: &str, outcome: Outcome) {
    // A call that timed out has left the map; its late reply is dropped here.
    let waiter = pending.lock().waiting.remove(id);
    if let Some(waiter) = waiter {
        // Posted outside the lock: it may wake a thread.
        waiter.post_outcome(outcome);
    }
}
