//! Subscribing: one builder for the data stream and for events, which differ only in how the
//! queue is bound (each kind, in `data.rs` and `events.rs`, says how).

use amiquip::FieldTable;

use super::inbox::Inbox;
use super::Message;
use crate::address::check_queue_name;
use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::broker::topology::Declaration;
use crate::error::Result;
use crate::participant::Participant;

/// Deliveries a subscriber holds before it acks: enough to keep a fast handler busy.
const DEFAULT_PREFETCH: u16 = 64;

/// A subscription being set up: made by [`Fabric::data_subscriber`](crate::Fabric::data_subscriber)
/// or [`Fabric::event_subscriber`](crate::Fabric::event_subscriber), started by
/// [`handle`](Self::handle) or [`inbox`](Self::inbox).
///
/// The subscriber's queue is named after it: subscribers with the same name share one queue
/// and so split the messages between them (one service type, several instances); subscribers
/// with different names each get every message.
#[derive(Debug)]
#[must_use = "a Subscriber subscribes to nothing until handle() or inbox() is called"]
pub struct Subscriber<K> {
    participant: Participant,
    name: String,
    /// What the kind binds the queue with: headers, or topics.
    pub(super) kind: K,
    durable: bool,
    prefetch: u16,
}

/// The two kinds of [`Subscriber`]: [`DataStream`](crate::DataStream) and
/// [`Events`](crate::Events). Sealed.
pub trait SubscriberKind: sealed::Sealed {}

pub(super) mod sealed {
    use crate::broker::topology::Declaration;
    use crate::error::Result;
    use crate::participant::Participant;

    /// How a kind of subscriber binds its queue. In a private module: nobody outside the
    /// crate can name it, so its crate-private types are not exposed.
    #[allow(private_interfaces)]
    pub trait Sealed {
        /// The exchange's declaration and the bindings of `queue` to it, after checking the
        /// kind's settings.
        fn bindings(&self, participant: &Participant, queue: &str) -> Result<Vec<Declaration>>;
    }
}

impl<K: SubscriberKind + Default> Subscriber<K> {
    pub(crate) fn new(participant: Participant, name: &str) -> Subscriber<K> {
        Subscriber {
            participant,
            name: name.to_owned(),
            kind: K::default(),
            durable: false,
            prefetch: DEFAULT_PREFETCH,
        }
    }
}

impl<K: SubscriberKind> Subscriber<K> {
    /// Keep the queue, and the messages in it, while no subscriber runs: a durable, named
    /// queue that is never deleted by the broker (delete it with `rabbitmqctl delete_queue`
    /// when done). Without it the queue goes with its last subscriber, as in amqp-fabric.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// How many messages may be delivered to this subscriber before it acks them (at least
    /// 1). Default 64.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Starts the subscription: `handler` runs on a thread of the subscription's own for each
    /// message, which is acked when the handler returns. A handler that panics loses only
    /// that message. The subscription lasts until the returned handle is dropped or closed.
    pub fn handle<F>(self, mut handler: F) -> Result<Subscription>
    where
        F: FnMut(Message) + Send + 'static,
    {
        self.start(move |message| {
            handler(message);
            Disposition::Ack
        })
    }

    /// Starts the subscription and returns an [`Inbox`] to pull messages from. A message is
    /// acked when it is taken from the inbox, so none is lost when the inbox is closed: those
    /// not taken go back to the queue. Up to the prefetch wait, unacked, in this process.
    pub fn inbox(self) -> Result<Inbox> {
        Inbox::start(|hand_over| self.start(hand_over))
    }

    fn start<F>(self, mut on_message: F) -> Result<Subscription>
    where
        F: FnMut(Message) -> Disposition + Send + 'static,
    {
        check_queue_name("subscriber name", &self.name)?;
        let mut declarations = vec![Declaration::Queue {
            name: self.name.clone(),
            durable: self.durable,
            auto_delete: !self.durable,
            exclusive: false,
            arguments: FieldTable::default(),
        }];
        declarations.extend(self.kind.bindings(&self.participant, &self.name)?);
        let spec = ConsumerSpec {
            thread_name: format!("fabric-sub-{}", self.name),
            declarations,
            queue: self.name.clone(),
            prefetch: self.prefetch,
        };
        let link = std::sync::Arc::clone(self.participant.link());
        consumer::spawn(link, self.participant.hold(), spec, move |incoming| {
            on_message(Message::from_incoming(incoming))
        })
    }
}
