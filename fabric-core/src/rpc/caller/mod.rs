//! The client side of RPC: one reply queue and one publishing channel per
//! [`Fabric`](crate::Fabric) connection, shared by all its clients, set up again after every
//! reconnection.
//!
//! Callers publish their calls themselves on a channel behind a mutex: amiquip's `Channel`
//! is `Send` but not `Sync`, and the mutex makes one publish at a time while sparing every
//! call a hop through another thread (a wake-up on the latency path).
//!
//! Replies are read by the callers too (`waiting`). The reply thread (`replies`) owns the
//! consuming channel and its consumer (which borrows it) but reads nothing while it runs. Of
//! the callers waiting, one leads: it reads the consumer's receiver and hands each reply to
//! its caller's mailbox by correlation id; the others sleep on their own mailbox and nothing
//! else, so no two callers wait on one channel. When the leader's own reply comes it leaves
//! and wakes a follower to lead on. A sequential caller so gets its reply straight from
//! amiquip's I/O thread, and under load a reply wakes the leader (if it was asleep) and the
//! thread it answers.
//!
//! Everything that lives and dies with one connection (the reply queue, which is exclusive,
//! both channels, the consumer, the pending calls) is one reply session (`session`). The
//! reply thread starts a session per connection and ends it when the connection (or one of
//! its channels) breaks: every call pending in it fails at once with
//! [`Outcome::Interrupted`], and calls made meanwhile wait for the next session, up to their
//! own timeout.
//!
//! The reply thread watches the link, so a connection that dies is noticed with no call
//! waiting. A reply channel that fails alone (its queue deleted, the connection still up)
//! is noticed by the next leading caller, whose call then fails with
//! [`Outcome::Interrupted`]; the reply thread starts a new session after it.

mod replies;
mod session;
mod waiting;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::Publish;
use crossbeam_channel::bounded;
use parking_lot::{Condvar, Mutex};

use super::protocol::{self, CorrelationIds};
use crate::broker::link::{ConnectionState, Link};
use crate::thread::StoppableThread;
use crate::{Codec, Error, Result};
use replies::reply_thread;
use session::{End, ReplySession};
use waiting::Mailbox;
pub(crate) use waiting::PendingReply;

/// How a call ended, as the caller layer saw it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A `result` reply: the encoded return value.
    Result { codec: Codec, body: Vec<u8> },
    /// A `result` reply in a content type fabric cannot decode.
    Undecodable { content_type: Option<String> },
    /// An `error` reply from the server: its body, in `codec` (`None`: a content type
    /// fabric does not know).
    Failed { codec: Option<Codec>, body: Vec<u8> },
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
