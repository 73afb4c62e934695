//! Subscribing: one builder for the data stream and for events, which differ only in how the
//! queue is bound (each kind, in `data.rs` and `events.rs`, says how).

use amiquip::FieldTable;

use super::inbox::Inbox;
use super::Message;
use crate::address::{check_queue_name, parked_queue, PARKED_SUFFIX};
use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::broker::topology::{self, Declaration};
use crate::error::{Error, Result};
use crate::participant::Participant;

/// Deliveries a subscriber holds before it acks: enough to keep a fast handler busy.
const DEFAULT_PREFETCH: u16 = 64;
/// How many times a quorum subscription's message is delivered before it is parked.
const DEFAULT_DELIVERY_LIMIT: u32 = 5;

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
    /// A quorum queue, and its delivery limit; `None` for a classic queue.
    quorum: Option<u32>,
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
            quorum: None,
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

    /// Keep the queue and its messages on a cluster: a durable **quorum queue**, replicated
    /// on a majority of the cluster's nodes, so that losing any one node of three loses no
    /// message the broker confirmed ([`Receipt::wait`](crate::Receipt::wait) returned `Ok`).
    /// Implies [`durable`](Self::durable).
    ///
    /// A message is delivered once and redelivered at most
    /// [`delivery_limit`](Self::delivery_limit) times (5 by default): one whose handler fails
    /// every time ([`try_handle`](Self::try_handle)), or that takes its subscriber down with
    /// it, is then *parked* in the quorum queue `{name}.parked` instead of being delivered
    /// forever. RabbitMQ counts every return to the queue as a delivery, the messages an
    /// [`Inbox`] gives back when it closes too. Look at the parked messages with
    /// any AMQP tool (they carry RabbitMQ's `x-death` header) and, once the cause is fixed,
    /// put them back with [`Fabric::replay_parked`](crate::Fabric::replay_parked).
    ///
    /// Not the default: RabbitMQ refuses to declare a queue again with another type, so an
    /// existing classic `.durable()` queue must be deleted before it can become a quorum
    /// queue, and every subscriber of one name must agree. On a single node a quorum queue
    /// still parks poison messages, but it replicates nothing and writes every message to
    /// disk.
    pub fn quorum(mut self) -> Self {
        self.durable = true;
        self.quorum = Some(self.quorum.unwrap_or(DEFAULT_DELIVERY_LIMIT));
        self
    }

    /// How many times a message of a [`quorum`](Self::quorum) subscription is redelivered
    /// (RabbitMQ's `x-delivery-limit`) before it is parked: a message that always fails is
    /// handled `deliveries + 1` times in all (at least 1; implies `quorum`). Default 5.
    pub fn delivery_limit(mut self, deliveries: u32) -> Self {
        self = self.quorum();
        self.quorum = Some(deliveries.max(1));
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

    /// Starts the subscription: `handler` runs on a thread of the subscription's own for each
    /// message; `Ok` acks the message, `Err` gives it back to the queue to be delivered again
    /// (and logs the error). On a [`quorum`](Self::quorum) subscription a message that failed
    /// [`delivery_limit`](Self::delivery_limit) times is parked in `{name}.parked`; on a
    /// classic queue nothing bounds the retries, so `Err` there should mean "try later". A
    /// handler that panics loses only that message, as with [`handle`](Self::handle).
    pub fn try_handle<F, E>(self, mut handler: F) -> Result<Subscription>
    where
        F: FnMut(Message) -> std::result::Result<(), E> + Send + 'static,
        E: std::fmt::Display,
    {
        let name = self.name.clone();
        self.start(move |message| match handler(message) {
            Ok(()) => Disposition::Ack,
            Err(e) => {
                log::warn!(
                    "fabric: a handler of {name} failed ({e}); the message goes back to the queue"
                );
                Disposition::Requeue
            }
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
        let mut declarations = match self.quorum {
            None => vec![Declaration::Queue {
                name: self.name.clone(),
                durable: self.durable,
                auto_delete: !self.durable,
                exclusive: false,
                arguments: FieldTable::default(),
            }],
            Some(limit) => quorum_declarations(&self.name, limit)?,
        };
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

/// A quorum subscription's queue `name`, which parks a message delivered `limit` times in
/// `{name}.parked` (through the default exchange), and that queue, declared first.
fn quorum_declarations(name: &str, limit: u32) -> Result<Vec<Declaration>> {
    let parked = parked_queue(name);
    check_queue_name("subscriber name", &parked).map_err(|_| Error::InvalidName {
        kind: "subscriber name",
        name: name.to_owned(),
        reason: format!(
            "a quorum subscription also has a queue {{name}}{PARKED_SUFFIX}, which would be \
             longer than 255 bytes"
        ),
    })?;
    let arguments: FieldTable = [
        (
            "x-delivery-limit".to_owned(),
            topology::number_argument(u64::from(limit)),
        ),
        (
            "x-dead-letter-exchange".to_owned(),
            amiquip::AmqpValue::LongString(String::new()),
        ),
        (
            "x-dead-letter-routing-key".to_owned(),
            amiquip::AmqpValue::LongString(parked.clone()),
        ),
    ]
    .into_iter()
    .collect();
    Ok(vec![
        topology::quorum_queue(parked, FieldTable::default()),
        topology::quorum_queue(name.to_owned(), arguments),
    ])
}
