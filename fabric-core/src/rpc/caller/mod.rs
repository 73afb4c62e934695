//! The client side of RPC: one reply queue and one publishing channel per
//! [`Fabric`](crate::Fabric) connection, shared by all its clients, set up again after every
//! reconnection.
//!
//! Callers publish their calls themselves on a channel behind a mutex: amiquip's `Channel`
//! is `Send` but not `Sync`, and the mutex makes one publish at a time while sparing every
//! call a hop through another thread (a wake-up on the latency path).
//!
//! Replies are read by the callers too (`waiting.rs`). The reply thread (`replies.rs`) owns the
//! consuming channel and its consumer (which borrows it) but reads nothing while it runs. Of
//! the callers waiting, one leads: it reads the consumer's receiver and hands each reply to
//! its caller's mailbox by correlation id; the others sleep on their own mailbox
//! (`mailbox.rs`) and nothing else, so no two callers wait on one channel. When the leader's own reply comes it leaves
//! and wakes a follower to lead on. A sequential caller so gets its reply straight from
//! amiquip's I/O thread, and under load a reply wakes the leader (if it was asleep) and the
//! thread it answers.
//!
//! Everything that lives and dies with one connection (the reply queue, which is exclusive,
//! both channels, the consumer, the pending calls) is one reply session (`session.rs`), which
//! keeps its state to itself. The reply thread starts a session per connection, as every
//! channel-owning thread does (`run_sessions`), puts it in the slot callers take it from
//! (`slot.rs`), and ends it when the connection (or one of its channels) breaks: every call pending in it fails at once with
//! [`Outcome::Interrupted`], and calls made meanwhile wait for the next session, up to their
//! own timeout.
//!
//! The reply thread watches the link, so a connection that dies is noticed with no call
//! waiting. A reply channel that fails alone (its queue deleted, the connection still up)
//! is noticed by the next leading caller, whose call then fails with
//! [`Outcome::Interrupted`]; the reply thread starts a new session after it.

mod mailbox;
mod replies;
mod session;
mod slot;
mod waiting;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::Publish;
use crossbeam_channel::bounded;

use super::protocol::{self, CorrelationIds};
use crate::broker::link::Link;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::thread::StoppableThread;
use crate::trace::TraceContext;
use mailbox::Mailbox;
use replies::reply_thread;
use session::{End, ReplySession};
use slot::Slot;
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

/// The client side of RPC for one fabric, across its reconnections.
pub(crate) struct Caller {
    slot: Arc<Slot>,
    ids: CorrelationIds,
    /// Sets up each session, owns its consuming channel and consumer.
    thread: StoppableThread,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field(
                "reply_queue",
                &self.slot.current().map(|s| s.reply_queue().to_owned()),
            )
            .field("closed", &self.slot.is_closed())
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Starts the reply thread on `link`, and returns once its first session is up. If the
    /// link is reconnecting, returns at once: calls wait for the session, up to their timeout.
    pub(crate) fn start(link: Arc<Link>) -> Result<Caller> {
        let slot = Arc::new(Slot::new(Arc::clone(&link)));
        let (started_tx, started_rx) = bounded(1);
        let thread_slot = Arc::clone(&slot);
        let thread = StoppableThread::spawn("fabric-replies", move |stop| {
            reply_thread(&link, &thread_slot, &stop, started_tx)
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
            slot,
            ids: CorrelationIds::new(),
            thread,
        })
    }

    /// Publishes a call to the queue `routing_key`, sent from the span `trace`; the reply is
    /// awaited on the returned handle, so one thread may have many calls in flight.
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
        trace: &TraceContext,
    ) -> Result<PendingReply> {
        let deadline = Instant::now() + timeout;
        let correlation_id = self.ids.next();
        let mut unusable: Option<Arc<ReplySession>> = None;
        loop {
            let session = self.slot.live(deadline, unusable.as_ref(), timeout)?;
            let mailbox = Arc::new(Mailbox::default());
            if !session.register(&correlation_id, Arc::clone(&mailbox)) {
                unusable = Some(session);
                continue;
            }
            // From here on, dropping the handle takes the call out of the session again.
            let reply = PendingReply::new(
                Arc::clone(&session),
                correlation_id.clone(),
                mailbox,
                deadline,
            );
            // What is left of the timeout, after any wait for a session.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let properties = protocol::call_properties(
                correlation_id.clone(),
                session.reply_queue(),
                codec,
                remaining,
                trace,
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
        if let Some(session) = self.slot.close() {
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
