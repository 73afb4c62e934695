//! The client side of RPC: one reply queue and one publishing channel per
//! [`Fabric`](crate::Fabric) connection, shared by all its clients, set up again after every
//! reconnection.
//!
//! Callers publish their calls themselves on a channel behind a mutex: amiquip's `Channel`
//! is `Send` but not `Sync`, and the mutex makes one publish at a time while sparing every
//! call a hop through another thread (a wake-up on the latency path).
//!
//! Replies are read by the callers too (leader and followers). The reply thread owns the
//! consuming channel and its consumer (which borrows it) but reads nothing while it runs. Of
//! the callers waiting, one leads: it reads the consumer's receiver and hands each reply to
//! its caller's channel by correlation id (`pending`); the others sleep on their own channel
//! and nothing else, so no two callers wait on one channel. When the leader's own reply comes
//! it leaves and wakes a follower to lead on ([`Readers`]). A sequential caller so gets its
//! reply straight from amiquip's I/O thread, and under load a reply wakes one thread, the one
//! it answers, while the leader keeps reading.
//!
//! Everything that lives and dies with one connection (the reply queue, which is exclusive,
//! both channels, the consumer, the pending calls) is one [`ReplySession`]. The reply thread
//! starts a session per connection and ends it when the connection (or one of its channels)
//! breaks: every call pending in it fails at once with [`Outcome::Interrupted`], and calls
//! made meanwhile wait for the next session, up to their own timeout.
//!
//! The reply thread watches the link, so a connection that dies is noticed with no call
//! waiting. A reply channel that fails alone (its queue deleted, the connection still up)
//! is noticed by the next leading caller, whose call then fails with
//! [`Outcome::Interrupted`]; the reply thread starts a new session after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{
    Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery, Publish, QueueDeclareOptions,
    Return,
};
use crossbeam_channel::{bounded, select, Receiver, RecvError, Sender};
use parking_lot::{Condvar, Mutex};

use super::protocol::{self, CorrelationIds};
use crate::broker::link::{ConnectionState, Link, Unavailable};
use crate::broker::topology::{self, Declaration};
use crate::thread::StoppableThread;
use crate::{Codec, Error, Result};

/// How a call ended, as the caller layer saw it.
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
    /// The call was sent, but its session ended before a reply came (the connection or one
    /// of its channels broke): the call may or may not have run. The reason.
    Interrupted(String),
    /// The fabric was closed before a reply came.
    Closed,
}

/// Why a reply session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
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

/// Everything of the client side that one connection carries: the reply queue and its
/// consumer's receiver, the channel calls are published on and its returns, and the calls
/// sent in this session. A [`PendingReply`] holds the session it was sent in, so the end of a
/// session fails exactly its own calls.
struct ReplySession {
    /// The connection generation the session's channels belong to.
    generation: u64,
    /// The server-named, exclusive reply queue of this connection.
    reply_queue: String,
    /// Where calls are published; `None` once the session has ended.
    publish: Mutex<Option<Channel>>,
    pending: Mutex<Pending>,
    /// `pending.ended.is_some()`, readable without the lock on every reply.
    ended: AtomicBool,
    consumer: Receiver<ConsumerMessage>,
    returns: Receiver<Return>,
    /// Which waiting caller reads `consumer` and `returns`, and who waits meanwhile.
    readers: Mutex<Readers>,
    /// Dropped when the session ends, which wakes the reply thread to start the next one
    /// and the leading caller.
    alive: Mutex<Option<Sender<()>>>,
    /// Disconnected when the session ends.
    ending: Receiver<()>,
}

impl ReplySession {
    /// Hands one message from the reply queue to the call it answers.
    fn take(&self, message: Result<ConsumerMessage, RecvError>) {
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
    fn end(&self, end: End) {
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

    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Registers a call; `false` if the session has ended (nothing was registered).
    fn register(&self, correlation_id: &str, reply: Arc<Mailbox>) -> bool {
        let mut pending = self.pending.lock();
        if pending.ended.is_some() {
            return false;
        }
        pending.waiting.insert(correlation_id.to_owned(), reply);
        true
    }

    /// Publishes a call; `Err` (with why) if it was not sent.
    fn publish(&self, call: Publish<'_>) -> std::result::Result<(), String> {
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

/// A waiting caller's own slot, where its outcome, or the news that it leads now, is left.
/// A mutex and condvar rather than a channel: a channel's receiver spins and yields before it
/// sleeps, and with dozens of callers waiting those yields cost more than the sleep.
#[derive(Default)]
struct Mailbox {
    letters: Mutex<Letters>,
    posted: Condvar,
}

#[derive(Default)]
struct Letters {
    outcome: Option<Outcome>,
    /// The leader left and chose this caller to read the replies next.
    lead: bool,
}

/// What woke a waiting caller.
enum Letter {
    Outcome(Outcome),
    Lead,
}

impl Mailbox {
    fn post_outcome(&self, outcome: Outcome) {
        self.letters.lock().outcome = Some(outcome);
        self.posted.notify_one();
    }

    fn post_lead(&self) {
        self.letters.lock().lead = true;
        self.posted.notify_one();
    }

    /// The outcome if it has come.
    fn take_outcome(&self) -> Option<Outcome> {
        self.letters.lock().outcome.take()
    }

    /// Waits for a letter until `deadline` (`None`: for ever), the outcome before `Lead`.
    fn wait(&self, deadline: Option<Instant>) -> Option<Letter> {
        let mut letters = self.letters.lock();
        loop {
            if let Some(outcome) = letters.outcome.take() {
                return Some(Letter::Outcome(outcome));
            }
            if std::mem::take(&mut letters.lead) {
                return Some(Letter::Lead);
            }
            match deadline {
                Some(deadline) => {
                    if self.posted.wait_until(&mut letters, deadline).timed_out() {
                        return letters.outcome.take().map(Letter::Outcome);
                    }
                }
                None => self.posted.wait(&mut letters),
            }
        }
    }
}

/// Who reads a session's replies. At most one waiting caller leads (reads them); the others
/// wait on their own mailbox, listed here so that a leader whose reply has come can hand the
/// reading over to one of them. Kept under one lock, so no caller waits unled.
#[derive(Default)]
struct Readers {
    leading: bool,
    /// The followers waiting.
    idle: Vec<Arc<Mailbox>>,
}

impl Readers {
    /// A caller starts waiting: it leads (`true`) if nobody does, else it follows.
    fn join(&mut self, mailbox: &Arc<Mailbox>) -> bool {
        if self.leading {
            self.idle.push(Arc::clone(mailbox));
            false
        } else {
            self.leading = true;
            true
        }
    }

    /// The leader stops reading: a follower, if any, leads on.
    fn hand_over(&mut self) {
        match self.idle.pop() {
            Some(next) => next.post_lead(),
            None => self.leading = false,
        }
    }

    /// A follower stops waiting. `false` if it was chosen to lead meanwhile: it must then
    /// hand the reading over itself.
    fn leave(&mut self, mailbox: &Arc<Mailbox>) -> bool {
        match self.idle.iter().position(|idle| Arc::ptr_eq(idle, mailbox)) {
            Some(index) => {
                self.idle.swap_remove(index);
                true
            }
            None => false,
        }
    }
}

/// A call on its way: wait for its outcome, or drop it to forget the call.
pub(crate) struct PendingReply {
    session: Arc<ReplySession>,
    correlation_id: String,
    mailbox: Arc<Mailbox>,
    deadline: Instant,
    /// Set once the call has left `pending` (answered, ended or timed out).
    settled: bool,
}

impl PendingReply {
    /// The outcome, or `None` when the deadline passed first.
    pub(crate) fn wait(mut self) -> Option<Outcome> {
        let session = Arc::clone(&self.session);
        let mut leading = session.readers.lock().join(&self.mailbox);
        let outcome = loop {
            if leading {
                let outcome = self.lead(&session);
                session.readers.lock().hand_over();
                break outcome;
            }
            let outcome = match self.mailbox.wait(Some(self.deadline)) {
                Some(Letter::Lead) => {
                    leading = true;
                    continue;
                }
                Some(Letter::Outcome(outcome)) => Some(outcome),
                None => self.timed_out(),
            };
            let mut readers = session.readers.lock();
            if !readers.leave(&self.mailbox) {
                readers.hand_over();
            }
            break outcome;
        };
        self.settled = true;
        outcome
    }

    /// As the leader: reads replies for everyone until ours comes or our time is up.
    fn lead(&self, session: &ReplySession) -> Option<Outcome> {
        loop {
            // Our reply may have come before we led, or been among those we just read.
            if let Some(outcome) = self.mailbox.take_outcome() {
                return Some(outcome);
            }
            // Once the session has ended, our outcome is in our mailbox.
            if session.is_ended() {
                return self.handed_over();
            }
            select! {
                recv(session.consumer) -> message => session.take(message),
                recv(session.returns) -> returned => match returned {
                    Ok(returned) => route_return(&session.pending, returned),
                    Err(_) => session.end(End::Interrupted("the call channel closed".to_owned())),
                },
                recv(session.ending) -> _ => {}
                default(self.deadline.saturating_duration_since(Instant::now())) => {
                    return self.timed_out();
                }
            }
        }
    }

    /// The deadline passed: leave the pending map, unless the reply was handed over just now.
    fn timed_out(&self) -> Option<Outcome> {
        let removed = self
            .session
            .pending
            .lock()
            .waiting
            .remove(&self.correlation_id);
        match removed {
            Some(_) => None,
            None => self.handed_over(),
        }
    }

    /// The outcome of a call no longer in `pending`: whoever took it out posts it at once
    /// (only the caller itself takes its call out without posting).
    fn handed_over(&self) -> Option<Outcome> {
        loop {
            if let Some(Letter::Outcome(outcome)) = self.mailbox.wait(None) {
                return Some(outcome);
            }
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        // A call abandoned before its outcome: its late reply is dropped.
        if !self.settled {
            self.session
                .pending
                .lock()
                .waiting
                .remove(&self.correlation_id);
        }
    }
}

/// The session callers use now, shared by the callers and the reply thread.
struct Slot {
    /// The live session; `None` between sessions (while reconnecting).
    session: Option<Arc<ReplySession>>,
    /// Set by [`Caller::stop`]: no session will come any more.
    closed: bool,
}

struct Shared {
    link: Arc<Link>,
    slot: Mutex<Slot>,
    /// Notified whenever `slot` changes, for calls waiting for a session.
    changed: Condvar,
}

impl Shared {
    /// A live session to send a call in, other than `unusable` (one the call could not be
    /// sent in), waiting for one until `deadline`.
    fn live_session(
        &self,
        deadline: Instant,
        unusable: Option<&Arc<ReplySession>>,
        timeout: Duration,
    ) -> Result<Arc<ReplySession>> {
        let mut slot = self.slot.lock();
        loop {
            if slot.closed {
                return Err(Error::Closed);
            }
            if let Some(session) = &slot.session {
                let refused = unusable.is_some_and(|u| Arc::ptr_eq(u, session));
                if !refused && !session.is_ended() {
                    return Ok(Arc::clone(session));
                }
            }
            if self.changed.wait_until(&mut slot, deadline).timed_out() {
                if slot.closed {
                    return Err(Error::Closed);
                }
                let reason = match self.link.state() {
                    ConnectionState::Closed => return Err(Error::Closed),
                    // Connected, but the reply queue is not set up again yet.
                    state @ ConnectionState::Connected { .. } => {
                        format!("{state}, but its reply queue is not set up yet")
                    }
                    state => state.to_string(),
                };
                return Err(Error::Unavailable {
                    reason,
                    waited: timeout,
                });
            }
        }
    }

    /// No session will come any more: waiting calls fail with [`Error::Closed`].
    fn close(&self) -> Option<Arc<ReplySession>> {
        let session = {
            let mut slot = self.slot.lock();
            slot.closed = true;
            slot.session.take()
        };
        self.changed.notify_all();
        session
    }

    fn is_closed(&self) -> bool {
        self.slot.lock().closed
    }
}

/// The client side of RPC for one fabric, across its reconnections.
pub(crate) struct Caller {
    shared: Arc<Shared>,
    ids: CorrelationIds,
    /// Sets up each session, owns its consuming channel and consumer.
    thread: StoppableThread,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.shared.slot.lock();
        f.debug_struct("Caller")
            .field(
                "reply_queue",
                &slot.session.as_ref().map(|s| s.reply_queue.clone()),
            )
            .field("closed", &slot.closed)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Starts the reply thread on `link`, and returns once its first session is up. If the
    /// link is reconnecting, returns at once: calls wait for the session, up to their timeout.
    pub(crate) fn start(link: Arc<Link>) -> Result<Caller> {
        let shared = Arc::new(Shared {
            link,
            slot: Mutex::new(Slot {
                session: None,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let (started_tx, started_rx) = bounded(1);
        let thread_shared = Arc::clone(&shared);
        let thread = StoppableThread::spawn("fabric-replies", move |stop| {
            reply_thread(&thread_shared, &stop, started_tx)
        })?;
        match started_rx.recv() {
            Ok(Ok(())) | Ok(Err(Error::ConnectionLost { .. })) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::Broker {
                    operation: "start the reply thread".to_owned(),
                    reason: "it ended before it started consuming".to_owned(),
                })
            }
        }
        Ok(Caller {
            shared,
            ids: CorrelationIds::new(),
            thread,
        })
    }

    /// Publishes a call to the queue `routing_key`; the reply is awaited on the returned
    /// handle, so one thread may have many calls in flight.
    ///
    /// While the connection is down the call waits for the next session, up to `timeout`,
    /// and then fails with [`Error::Unavailable`]: nothing was sent. A publish that fails
    /// (the channel died under it) was not sent either, and is sent in the next session.
    pub(crate) fn send(
        &self,
        routing_key: String,
        body: Vec<u8>,
        codec: Codec,
        timeout: Duration,
    ) -> Result<PendingReply> {
        let deadline = Instant::now() + timeout;
        let correlation_id = self.ids.next();
        let mut unusable: Option<Arc<ReplySession>> = None;
        loop {
            let session = self
                .shared
                .live_session(deadline, unusable.as_ref(), timeout)?;
            let mailbox = Arc::new(Mailbox::default());
            if !session.register(&correlation_id, Arc::clone(&mailbox)) {
                unusable = Some(session);
                continue;
            }
            // From here on, dropping the handle takes the entry out of the map again.
            let reply = PendingReply {
                session: Arc::clone(&session),
                correlation_id: correlation_id.clone(),
                mailbox,
                deadline,
                settled: false,
            };
            // What is left of the timeout, after any wait for a session.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let properties = protocol::call_properties(
                correlation_id.clone(),
                &session.reply_queue,
                codec,
                remaining,
            );
            let call = Publish {
                body: &body,
                routing_key: routing_key.clone(),
                // Unroutable calls come back at once instead of timing out.
                mandatory: true,
                immediate: false,
                properties,
            };
            match session.publish(call) {
                Ok(()) => return Ok(reply),
                Err(why) => {
                    drop(reply);
                    log::warn!(
                        "fabric: a call was not sent ({why}); sending it on the next connection"
                    );
                    session.end(End::Interrupted(format!("a call could not be sent: {why}")));
                    unusable = Some(session);
                }
            }
        }
    }

    /// Stops the reply thread; calls still waiting fail with [`Error::Closed`]. The thread
    /// cancels and drains the consumer before dropping it while the connection is up.
    pub(crate) fn stop(&self) {
        if let Some(session) = self.shared.close() {
            session.end(End::Closed);
        }
        self.thread.stop();
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

/// The body of `fabric-replies`: one session per connection until told to stop. After a
/// session fails it waits for a newer connection when the connection broke, or backs off
/// when only a channel did. `started` hears how the first session went.
fn reply_thread(shared: &Shared, stop: &Receiver<()>, started: Sender<Result<()>>) {
    let link = &*shared.link;
    let mut started = Some(started);
    let mut failures = 0u32;
    loop {
        let (generation, error) = match run_session(shared, stop, &mut started, &mut failures) {
            Ok(()) => break,
            Err(failed) => failed,
        };
        if error == Error::Closed || link.state() == ConnectionState::Closed {
            if let Some(started) = started.take() {
                let _ = started.send(Err(Error::Closed));
            }
            break;
        }
        let lost = !link.is_up(generation);
        if let Some(started) = started.take() {
            let reported = match lost {
                true => Error::ConnectionLost {
                    reason: error.to_string(),
                },
                false => error.clone(),
            };
            let _ = started.send(Err(reported));
            // A first session refused on a working connection would be refused again.
            if !lost {
                break;
            }
        }
        let waited = if lost {
            log::info!("fabric: RPC replies resume when the connection is back");
            link.wait_newer(generation, Some(stop), None).map(drop)
        } else {
            let delay = link.backoff().delay(failures);
            failures += 1;
            log::warn!("fabric: RPC replies failed: {error}; starting again in {delay:?}");
            match link.wait_newer(generation, Some(stop), Some(Instant::now() + delay)) {
                Err(Unavailable::TimedOut(_)) => Ok(()),
                other => other.map(drop),
            }
        };
        if waited.is_err() {
            break;
        }
    }
    if let Some(session) = shared.close() {
        session.end(End::Closed);
    }
}

/// One session: sets up the reply queue and both channels on the current connection,
/// publishes the session for callers, and waits until it ends. `Ok` when told to stop,
/// else the generation it ran on and why it ended.
fn run_session(
    shared: &Shared,
    stop: &Receiver<()>,
    started: &mut Option<Sender<Result<()>>>,
    failures: &mut u32,
) -> std::result::Result<(), (u64, Error)> {
    let link = &*shared.link;
    let (channel, generation) = link.open_channel().map_err(|e| (link.generation(), e))?;
    let outcome = serve_session(shared, stop, started, failures, &channel, generation);
    let _ = channel.close();
    outcome.map_err(|e| (generation, e))
}

fn serve_session(
    shared: &Shared,
    stop: &Receiver<()>,
    started: &mut Option<Sender<Result<()>>>,
    failures: &mut u32,
    channel: &Channel,
    generation: u64,
) -> Result<()> {
    let link = &*shared.link;
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
    topology::declare(channel, &reply_topology(&reply_queue))?;
    let (publish, publish_generation) = link.open_channel()?;
    if publish_generation != generation {
        let _ = publish.close();
        return Err(Error::ConnectionLost {
            reason: "the connection changed while the reply queue was set up".to_owned(),
        });
    }
    let returns = match publish.listen_for_returns() {
        Ok(returns) => returns,
        Err(e) => {
            let _ = publish.close();
            return Err(Error::broker("listen for returned calls", e));
        }
    };
    let options = ConsumerOptions {
        no_ack: true,
        exclusive: true,
        ..ConsumerOptions::default()
    };
    let consumer = match channel.basic_consume(reply_queue.as_str(), options) {
        Ok(consumer) => consumer,
        Err(e) => {
            let _ = publish.close();
            return Err(Error::broker("consume the reply queue", e));
        }
    };
    let (alive_tx, alive_rx) = bounded::<()>(0);
    let session = Arc::new(ReplySession {
        generation,
        reply_queue,
        publish: Mutex::new(Some(publish)),
        pending: Mutex::new(Pending::default()),
        ended: AtomicBool::new(false),
        consumer: consumer.receiver().clone(),
        returns,
        readers: Mutex::new(Readers::default()),
        alive: Mutex::new(Some(alive_tx)),
        ending: alive_rx.clone(),
    });
    let end = {
        let mut slot = shared.slot.lock();
        if slot.closed {
            Some(End::Closed)
        } else {
            slot.session = Some(Arc::clone(&session));
            None
        }
    };
    let end = match end {
        Some(end) => end,
        None => {
            shared.changed.notify_all();
            *failures = 0;
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
            log::debug!(
                "fabric: RPC replies on connection {generation} go to {}",
                session.reply_queue
            );
            watch_session(shared, stop, &session, &alive_rx)
        }
    };
    // Out of the slot first, so no new call is sent in it.
    {
        let mut slot = shared.slot.lock();
        if slot
            .session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &session))
        {
            slot.session = None;
        }
    }
    session.end(end);
    retire(consumer);
    if let Some(publish) = session.publish.lock().take() {
        let _ = publish.close();
    }
    let end = session.pending.lock().ended.clone();
    match end {
        Some(End::Interrupted(reason)) if !shared.is_closed() => {
            Err(Error::ConnectionLost { reason })
        }
        _ => Ok(()),
    }
}

/// Waits until the session ends: told to stop, the connection it runs on is gone, or a
/// caller saw one of its channels end.
fn watch_session(
    shared: &Shared,
    stop: &Receiver<()>,
    session: &ReplySession,
    alive: &Receiver<()>,
) -> End {
    let link = &*shared.link;
    // Registered before the first look at the link, so no change goes unseen.
    let changes = link.changes();
    loop {
        if shared.is_closed() {
            return End::Closed;
        }
        if !link.is_up(session.generation) {
            return End::Interrupted(link.state().to_string());
        }
        select! {
            recv(stop) -> _ => return End::Closed,
            // Ended already (by a caller, or by `Caller::stop`): its first reason stands,
            // and this one is ignored.
            recv(alive) -> _ => return End::Closed,
            recv(changes) -> _ => {}
        }
    }
}

/// Cancels the consumer and drains it before it is dropped, so amiquip's I/O thread never
/// sends to a dropped consumer; on a dead connection the cancel fails at once.
fn retire(consumer: Consumer<'_>) {
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
    let waiter = pending.lock().waiting.remove(id);
    if let Some(waiter) = waiter {
        // Posted outside the lock: it may wake a thread.
        waiter.post_outcome(outcome);
    }
}
