//! Publishing with publisher confirms, shared by a fabric's data and event streams.
//!
//! Callers publish on one confirm-mode channel themselves, one at a time behind a mutex, so a
//! message goes from the caller to amiquip's I/O thread with no hop through a thread of ours.
//! Confirms are read by whoever needs one: a caller waiting on a [`Receipt`], or a publisher
//! waiting for room in the window (up to `window` messages may await the broker's answer at
//! once, so throughput is not bound by one round trip per message). No thread of ours stands
//! between the broker's confirm and the caller who waits for it.
//!
//! # Across reconnections
//!
//! The confirm-mode channel belongs to one connection (one *session* of the publisher). When
//! the connection breaks, the messages of that session still awaiting a confirm fail with
//! [`Error::ConnectionLost`]: the broker may or may not have taken them, and nothing can tell
//! any more. The next publish waits for the new connection (up to the fabric's call timeout,
//! then [`Error::Unavailable`]), opens a new confirm-mode channel, and declares each
//! exchange again before its first message there, since a restarted broker may have lost it.
//! Telling a stale session costs the hot path two atomic reads: the newest connection
//! generation up and the newest lost, kept by a listener of the link.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{AmqpProperties, Channel, Confirm, ConfirmSmoother, Publish};
use crossbeam_channel::{at, bounded, never, select, Receiver, RecvError, SendError, Sender};
use parking_lot::{Mutex, MutexGuard};

use super::link::{Link, Unavailable};
use super::state::ConnectionState;
use super::topology::{self, Declaration};
use crate::error::{Error, Result};
use crate::observe;

/// How long a publish whose channel could not be opened waits for the link to notice that
/// the connection died, before taking the refusal as real.
const DYING_GRACE: Duration = Duration::from_secs(1);

/// How long a closing publisher waits for the broker to confirm what it already sent.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The reason given to receipts whose channel died before the broker confirmed them.
const UNCONFIRMED: &str = "the connection (or the publishing channel) broke before the broker \
     confirmed this message: it may or may not have reached the broker";

/// The broker's answer to one published message, to wait for when it matters.
///
/// Dropping a receipt does not cancel anything; a message the broker refused is then logged.
#[must_use = "a receipt tells whether the broker took the message; wait() on it or drop it knowingly"]
pub struct Receipt {
    answer: Receiver<Result<()>>,
    /// The confirms of the channel the message went out on.
    confirms: Receiver<Confirm>,
    /// Which session (connection generation) that channel belongs to.
    session: u64,
    /// `None` for a receipt settled from the start ([`Receipt::settled`]).
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("connection", &self.session)
            .finish_non_exhaustive()
    }
}

impl Receipt {
    /// The receipt of a message taken at once, by no broker: what a test double of a
    /// publisher (`testing::Recorder`) hands back.
    pub(crate) fn settled() -> Receipt {
        let (answer, receipt) = bounded(1);
        let _ = answer.send(Ok(()));
        Receipt {
            answer: receipt,
            confirms: never(),
            session: 0,
            shared: None,
        }
    }

    /// Blocks until the broker has taken the message (`Ok`) or refused it
    /// ([`Error::PublishRejected`]). If the connection (or the publishing channel) broke
    /// before the broker answered, fails at once with [`Error::ConnectionLost`]: the message
    /// may or may not have reached the broker, and fabric does not publish it again.
    pub fn wait(self) -> Result<()> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), giving up after `timeout` with [`Error::ConfirmTimeout`]
    /// (the broker may still take the message).
    pub fn wait_timeout(self, timeout: Duration) -> Result<()> {
        self.wait_until(Some((Instant::now() + timeout, timeout)))
    }

    /// Waits for the answer, until the deadline of `limit` (with the timeout it came from).
    fn wait_until(self, limit: Option<(Instant, Duration)>) -> Result<()> {
        let timer = limit.map_or_else(never, |(deadline, _)| at(deadline));
        let ended = never();
        let mut confirms = &self.confirms;
        loop {
            // Read confirms ourselves while we wait: ours may be among them.
            select! {
                recv(self.answer) -> answer => return answer.unwrap_or(Err(Error::Closed)),
                recv(confirms) -> confirm => {
                    if confirm.is_err() {
                        // The channel is gone; settling that fails our answer, if it is
                        // still waiting. Stop reading the ended stream.
                        confirms = &ended;
                    }
                    if let Some(shared) = &self.shared {
                        shared.take(self.session, confirm);
                    }
                }
                recv(timer) -> _ => {
                    let timeout = limit.map_or(Duration::ZERO, |(_, timeout)| timeout);
                    return Err(Error::ConfirmTimeout { timeout });
                }
            }
        }
    }
}

/// One message to publish.
pub(crate) struct Outgoing<'a> {
    pub exchange: String,
    /// How to declare the exchange, which happens once per connection before its first
    /// message: publishing to a missing exchange would close the channel.
    pub declaration: fn(&str) -> Declaration,
    pub routing_key: &'a str,
    pub body: Vec<u8>,
    /// Builds the properties: amiquip takes them by value, and a message whose channel
    /// turned out dead is published again on the next connection.
    pub properties: &'a dyn Fn() -> AmqpProperties,
}

/// The confirm-mode channel of one connection and what awaits its confirms.
struct Session {
    /// The generation of the connection the channel is on.
    generation: u64,
    channel: Channel,
    confirms: Receiver<Confirm>,
    /// Answers of the messages awaiting a confirm, oldest first: the broker numbers a
    /// channel's publishes 1, 2, 3..., and the mutex keeps publish order and this order one.
    awaiting: VecDeque<Sender<Result<()>>>,
    /// Puts confirms in tag order, one per message, whichever thread read them.
    smoother: ConfirmSmoother,
    /// Exchanges declared on this connection.
    declared: HashSet<String>,
}

/// What the publishing callers share.
struct State {
    /// `None` before the first publish and after the channel broke.
    session: Option<Session>,
    /// Set once the publisher is stopped: later publishes fail with it.
    ended: Option<Error>,
}

/// What the link has said about its connections, readable without a lock: the hot path's
/// whole cost of noticing a reconnection is two atomic loads.
#[derive(Default)]
struct Generations {
    /// The newest connection generation known to be up: a session older than it is stale.
    /// Written by the link's listener and by whoever opens a session.
    newest: AtomicU64,
    /// The newest generation known to be lost (the link reported it reconnecting).
    lost: AtomicU64,
}

impl Generations {
    /// Whether the connection of a session of `generation` is gone.
    fn is_stale(&self, generation: u64) -> bool {
        generation < self.newest.load(Ordering::Acquire)
            || generation <= self.lost.load(Ordering::Acquire)
    }
}

struct Shared {
    state: Mutex<State>,
    link: Arc<Link>,
    /// Which connections are current, as the link's listener reports it.
    generations: Arc<Generations>,
    window: usize,
    /// How long a publish waits for the connection when there is none.
    wait_for_connection: Duration,
}

impl Shared {
    /// Settles what one confirm (or the end of the confirm stream) of session `generation`
    /// says. Confirms of a session already replaced are ignored: its messages have failed.
    fn take(&self, generation: u64, confirm: std::result::Result<Confirm, RecvError>) {
        let retired = {
            let mut state = self.state.lock();
            let Some(session) = state
                .session
                .as_mut()
                .filter(|s| s.generation == generation)
            else {
                return;
            };
            match confirm {
                Ok(confirm) => {
                    let confirms: Vec<Confirm> = session.smoother.process(confirm).collect();
                    for single in confirms {
                        settle(session, single);
                    }
                    None
                }
                Err(_) => retire(&mut state),
            }
        };
        // Dropping a channel closes it, a round trip when it still lives: not under the lock.
        drop(retired);
    }

    /// Opens a confirm-mode channel on the connection, waiting for one until `deadline`.
    /// The lock is let go while waiting.
    fn open_session(&self, state: &mut MutexGuard<'_, State>, deadline: Instant) -> Result<()> {
        loop {
            if let Some(ended) = &state.ended {
                return Err(ended.clone());
            }
            let last_known = self.link.generation();
            let opened = self.link.open_channel().and_then(|(channel, generation)| {
                let confirms = channel
                    .listen_for_publisher_confirms()
                    .map_err(|e| Error::broker("listen for publisher confirms", e))?;
                channel
                    .enable_publisher_confirms()
                    .map_err(|e| Error::broker("enable publisher confirms", e))?;
                Ok((channel, confirms, generation))
            });
            let failure = match opened {
                Ok((channel, confirms, generation)) => {
                    self.generations
                        .newest
                        .fetch_max(generation, Ordering::AcqRel);
                    state.session = Some(Session {
                        generation,
                        channel,
                        confirms,
                        awaiting: VecDeque::with_capacity(self.window),
                        smoother: ConfirmSmoother::new(),
                        declared: HashSet::new(),
                    });
                    return Ok(());
                }
                Err(e) => e,
            };
            if self.link.state() == ConnectionState::Closed {
                return Err(Error::Closed);
            }
            let reconnecting = matches!(failure, Error::ConnectionLost { .. });
            // While reconnecting, any connection will do. Otherwise the connection may be
            // dying without the link knowing yet: give it a moment to be replaced, and if it
            // is not, the refusal was real.
            let (after, until) = if reconnecting {
                (0, deadline)
            } else {
                (last_known, deadline.min(Instant::now() + DYING_GRACE))
            };
            let newer =
                MutexGuard::unlocked(state, || self.link.wait_newer(after, None, Some(until)));
            match newer {
                Ok(_) => {}
                Err(Unavailable::TimedOut(_)) if !reconnecting && until < deadline => {
                    return Err(failure)
                }
                Err(why) => return Err(why.into_error(self.wait_for_connection)),
            }
        }
    }
}

/// A fabric's confirming publisher.
pub(crate) struct ConfirmingPublisher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ConfirmingPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmingPublisher")
            .field("window", &self.shared.window)
            .finish_non_exhaustive()
    }
}

impl ConfirmingPublisher {
    /// A publisher on `link`; its first confirm-mode channel opens with the first publish.
    /// While the link reconnects, a publish waits up to `wait_for_connection`.
    pub(crate) fn start(
        link: Arc<Link>,
        window: usize,
        wait_for_connection: Duration,
    ) -> ConfirmingPublisher {
        let generations = Arc::new(Generations::default());
        generations
            .newest
            .store(link.generation(), Ordering::Release);
        let seen = Arc::clone(&generations);
        link.on_change(Arc::new(move |state| match state {
            ConnectionState::Connected { generation, .. } => {
                seen.newest.fetch_max(*generation, Ordering::AcqRel);
            }
            ConnectionState::Reconnecting { .. } | ConnectionState::Closed => {
                let newest = seen.newest.load(Ordering::Acquire);
                seen.lost.fetch_max(newest, Ordering::AcqRel);
            }
            _ => {}
        }));
        let window = window.max(1);
        ConfirmingPublisher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    session: None,
                    ended: None,
                }),
                link,
                generations,
                window,
                wait_for_connection,
            }),
        }
    }

    /// Publishes a message; while the window is full, reads confirms until it has room.
    /// Without a connection, waits for one up to the configured time, then fails with
    /// [`Error::Unavailable`].
    pub(crate) fn publish(&self, message: Outgoing<'_>) -> Result<Receipt> {
        let shared = &self.shared;
        // Set on the first trip through the slow path.
        let mut deadline = None;
        // A message whose channel fails is tried once more, on a channel opened for it.
        let mut opened_here = false;
        let mut state = shared.state.lock();
        loop {
            if let Some(ended) = &state.ended {
                return Err(ended.clone());
            }
            let stale = state
                .session
                .as_ref()
                .is_some_and(|s| shared.generations.is_stale(s.generation));
            if stale {
                let retired = retire(&mut state);
                MutexGuard::unlocked(&mut state, || drop(retired));
                continue;
            }
            let Some(session) = state.session.as_mut() else {
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + shared.wait_for_connection);
                shared.open_session(&mut state, deadline)?;
                opened_here = true;
                continue;
            };
            if session.awaiting.len() >= shared.window {
                let (generation, confirms) = (session.generation, session.confirms.clone());
                drop(state);
                shared.take(generation, confirms.recv());
                state = shared.state.lock();
                continue;
            }
            match send(session, &message) {
                Ok(()) => {
                    let (answer, receipt) = bounded(1);
                    session.awaiting.push_back(answer);
                    return Ok(Receipt {
                        answer: receipt,
                        confirms: session.confirms.clone(),
                        session: session.generation,
                        shared: Some(Arc::clone(shared)),
                    });
                }
                Err(error) => {
                    // The channel is unusable either way; its unconfirmed messages fail.
                    let retired = retire(&mut state);
                    MutexGuard::unlocked(&mut state, || drop(retired));
                    if opened_here {
                        return Err(error);
                    }
                    // This message was not sent: it goes out on a new channel (and, if the
                    // connection is gone, on the next connection).
                    log::info!(
                        "fabric: the publishing channel broke ({error}); publishing on a new one"
                    );
                }
            }
        }
    }

    /// Refuses new messages, waits (at most five seconds) for the broker to confirm those
    /// already sent, fails the rest with [`Error::Closed`], and closes the channel.
    pub(crate) fn stop(&self) {
        let shared = &self.shared;
        let grace_ends = Instant::now() + CLOSE_GRACE;
        loop {
            let (generation, confirms) = {
                let mut state = shared.state.lock();
                state.ended.get_or_insert(Error::Closed);
                match &state.session {
                    Some(session) if !session.awaiting.is_empty() => {
                        (session.generation, session.confirms.clone())
                    }
                    _ => break,
                }
            };
            match confirms.recv_deadline(grace_ends) {
                Ok(confirm) => shared.take(generation, Ok(confirm)),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    shared.take(generation, Err(RecvError))
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
            }
        }
        let session = shared.state.lock().session.take();
        if let Some(mut session) = session {
            for waiter in session.awaiting.drain(..) {
                let _ = waiter.send(Err(Error::Closed));
            }
            let _ = session.channel.close();
        }
    }
}

impl Drop for ConfirmingPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Declares the message's exchange on this connection if it is new here, then publishes.
fn send(session: &mut Session, message: &Outgoing) -> Result<()> {
    if !session.declared.contains(&message.exchange) {
        topology::declare(
            &session.channel,
            &[(message.declaration)(&message.exchange)],
        )?;
        session.declared.insert(message.exchange.clone());
    }
    let publish = Publish {
        body: &message.body,
        routing_key: message.routing_key.to_owned(),
        mandatory: false,
        immediate: false,
        properties: (message.properties)(),
    };
    session
        .channel
        .basic_publish(message.exchange.as_str(), publish)
        .map_err(|e| Error::broker("publish a message", e))
}

/// Takes the session out and fails every message still awaiting its confirm: the broker may
/// or may not have them. Returns the channel, for the caller to drop outside the lock.
fn retire(state: &mut State) -> Option<Channel> {
    let mut session = state.session.take()?;
    if !session.awaiting.is_empty() {
        log::warn!(
            "fabric: {} published messages lost their confirm with connection {}",
            session.awaiting.len(),
            session.generation
        );
    }
    let error = Error::ConnectionLost {
        reason: UNCONFIRMED.to_owned(),
    };
    for waiter in session.awaiting.drain(..) {
        observe::confirmed(false);
        let _ = waiter.send(Err(error.clone()));
    }
    Some(session.channel)
}

/// Resolves the receipt of the oldest message awaiting a confirm.
fn settle(session: &mut Session, confirm: Confirm) {
    let answer = match confirm {
        Confirm::Ack(_) => Ok(()),
        Confirm::Nack(_) => Err(Error::PublishRejected {
            reason: "the broker nacked the message".to_owned(),
        }),
    };
    observe::confirmed(answer.is_ok());
    if let Some(waiter) = session.awaiting.pop_front() {
        if let Err(SendError(Err(e))) = waiter.send(answer) {
            log::warn!("fabric: nobody waited for this answer to a publish: {e}");
        }
    }
}
