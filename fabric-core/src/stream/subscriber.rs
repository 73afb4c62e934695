//! Subscribing to data and events: one builder, two kinds of binding.

use std::marker::PhantomData;
use std::time::Duration;

use amiquip::{AmqpValue, FieldTable};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};

use super::{data, events, Headers, Message};
use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::broker::topology::Declaration;
use crate::{Error, Fabric, Result};

/// The longest AMQP name.
const NAME_MAX: usize = 255;
/// Deliveries a subscriber holds before it acks: enough to keep a fast handler busy.
const DEFAULT_PREFETCH: u16 = 64;

/// Marks a [`Subscriber`] of the data stream (a headers exchange).
#[derive(Debug)]
pub enum DataStream {}
/// Marks a [`Subscriber`] of events (a topic exchange).
#[derive(Debug)]
pub enum Events {}

/// A subscription being set up: made by [`Fabric::data_subscriber`] or
/// [`Fabric::event_subscriber`], started by [`handle`](Self::handle) or
/// [`inbox`](Self::inbox).
///
/// The subscriber's queue is named after it: subscribers with the same name share one queue
/// and so split the messages between them (one service type, several instances); subscribers
/// with different names each get every message.
#[derive(Debug)]
pub struct Subscriber<K> {
    fabric: Fabric,
    name: String,
    /// Data: headers to match.
    headers: Headers,
    match_any: bool,
    /// Events: topic patterns.
    topics: Vec<String>,
    durable: bool,
    prefetch: u16,
    kind: PhantomData<K>,
}

impl<K> Subscriber<K> {
    pub(crate) fn new(fabric: &Fabric, name: &str) -> Subscriber<K> {
        Subscriber {
            fabric: fabric.clone(),
            name: name.to_owned(),
            headers: Headers::new(),
            match_any: false,
            topics: Vec::new(),
            durable: false,
            prefetch: DEFAULT_PREFETCH,
            kind: PhantomData,
        }
    }

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
}

impl Subscriber<DataStream> {
    /// Deliver only messages with this header (all of them must match, unless
    /// [`match_any`](Self::match_any)).
    pub fn header(mut self, name: &str, value: impl Into<super::HeaderValue>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Deliver only messages with these headers.
    pub fn headers(mut self, headers: &Headers) -> Self {
        for (name, value) in headers.iter() {
            self.headers.insert(name, value.clone());
        }
        self
    }

    /// Deliver messages that match any one of the headers (`x-match=any`) instead of all.
    pub fn match_any(mut self) -> Self {
        self.match_any = true;
        self
    }
}

impl Subscriber<Events> {
    /// Deliver events whose routing key matches `pattern`: words separated by `.`, where `*`
    /// stands for one word and `#` for zero or more (`order.*`, `user.profile.#`).
    pub fn topic(mut self, pattern: &str) -> Self {
        self.topics.push(pattern.to_owned());
        self
    }
}

/// The two kinds of [`Subscriber`]: [`DataStream`] and [`Events`]. Sealed.
pub trait SubscriberKind: sealed::Sealed {}

mod sealed {
    /// Which exchange a kind of subscriber binds to.
    pub trait Sealed {
        const TOPIC: bool;
    }
    impl Sealed for super::DataStream {
        const TOPIC: bool = false;
    }
    impl Sealed for super::Events {
        const TOPIC: bool = true;
    }
}

impl SubscriberKind for DataStream {}
impl SubscriberKind for Events {}

impl<K: SubscriberKind> Subscriber<K> {
    /// The exchange's declaration and the queue's bindings, after checking the settings.
    fn bindings(&self) -> Result<Vec<Declaration>> {
        if K::TOPIC {
            self.topic_bindings()
        } else {
            Ok(self.header_bindings())
        }
    }

    fn header_bindings(&self) -> Vec<Declaration> {
        let exchange = data::exchange_name(&self.fabric);
        let mut arguments: FieldTable = self.headers.to_table();
        let mode = if self.match_any { "any" } else { "all" };
        arguments.insert("x-match".to_owned(), AmqpValue::LongString(mode.to_owned()));
        vec![
            data::exchange_declaration(&exchange),
            Declaration::Binding {
                queue: self.name.clone(),
                exchange,
                routing_key: String::new(),
                arguments,
            },
        ]
    }

    fn topic_bindings(&self) -> Result<Vec<Declaration>> {
        if self.topics.is_empty() {
            return Err(Error::InvalidName {
                kind: "event subscriber",
                name: self.name.clone(),
                reason: "it has no topic: add one with .topic(\"order.*\")".to_owned(),
            });
        }
        let exchange = events::exchange_name(&self.fabric);
        let mut declarations = vec![events::exchange_declaration(&exchange)];
        for topic in &self.topics {
            events::check_topic(topic, true)?;
            declarations.push(Declaration::Binding {
                queue: self.name.clone(),
                exchange: exchange.clone(),
                routing_key: topic.clone(),
                arguments: FieldTable::default(),
            });
        }
        Ok(declarations)
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
    /// acked when it is taken from the inbox, so none is lost when the inbox is dropped: those
    /// not taken go back to the queue. Up to the prefetch wait, unacked, in this process.
    pub fn inbox(self) -> Result<Inbox> {
        // Zero capacity: the hand-over to the caller is the moment of the ack.
        let (sender, receiver) = bounded(0);
        let subscription = self.start(move |message| match sender.send(message) {
            Ok(()) => Disposition::Ack,
            // The inbox is gone: give the message back rather than lose it.
            Err(_) => Disposition::Requeue,
        })?;
        Ok(Inbox {
            receiver,
            subscription,
        })
    }

    fn start<F>(self, mut on_message: F) -> Result<Subscription>
    where
        F: FnMut(Message) -> Disposition + Send + 'static,
    {
        check_queue_name(&self.name)?;
        let mut declarations = vec![Declaration::Queue {
            name: self.name.clone(),
            durable: self.durable,
            auto_delete: !self.durable,
            exclusive: false,
            arguments: FieldTable::default(),
        }];
        declarations.extend(self.bindings()?);
        let spec = ConsumerSpec {
            thread_name: format!("fabric-sub-{}", self.name),
            declarations,
            queue: self.name.clone(),
            prefetch: self.prefetch,
        };
        consumer::spawn(&self.fabric, spec, move |incoming| {
            on_message(Message::from_incoming(incoming))
        })
    }
}

/// Messages of a subscription, to pull at the receiver's pace. Dropping it ends the
/// subscription; messages not yet taken go back to the queue.
#[derive(Debug)]
pub struct Inbox {
    // Dropped first, so a subscription thread blocked on a full inbox wakes up and stops.
    receiver: Receiver<Message>,
    subscription: Subscription,
}

impl Inbox {
    /// The next message; blocks until one comes. `None` once the subscription has ended.
    pub fn recv(&self) -> Option<Message> {
        self.receiver.recv().ok()
    }

    /// The next message, waiting at most `timeout`; `Ok(None)` when none came in time,
    /// `Err` once the subscription has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        match self.receiver.recv_timeout(timeout) {
            Ok(message) => Ok(Some(message)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// A message if one is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        self.receiver.try_recv().ok()
    }

    /// The messages, as they come, until the subscription ends.
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        self.receiver.iter()
    }

    /// The queue this inbox is fed from.
    pub fn queue(&self) -> &str {
        self.subscription.queue()
    }

    /// Ends the subscription.
    pub fn close(self) -> Result<()> {
        let Inbox {
            receiver,
            subscription,
        } = self;
        drop(receiver);
        subscription.close()
    }
}

fn check_queue_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > NAME_MAX {
        "it is longer than 255 bytes"
    } else if name.starts_with("amq.") {
        "names starting with `amq.` are reserved by the broker"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        kind: "subscriber name",
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}
