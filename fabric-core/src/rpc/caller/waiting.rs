//! How callers wait for their replies: one of them leads (reads the reply queue for all),
//! the others sleep on a mailbox of their own.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::select;
use parking_lot::{Condvar, Mutex};

use super::session::{route_return, End, ReplySession};
use super::Outcome;

/// A waiting caller's own slot, where its outcome, or the news that it leads now, is left.
/// A mutex and condvar rather than a channel: a channel's receiver spins and yields before it
/// sleeps, and with dozens of callers waiting those yields cost more than the sleep.
#[derive(Default)]
pub(super) struct Mailbox {
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
    pub(super) fn post_outcome(&self, outcome: Outcome) {
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
pub(super) struct Readers {
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

    /// The leader stops reading: a follower, if any, leads on. The newest one: replies come
    /// back roughly in the order calls went out, so it has the longest to wait for its own
    /// and leads longest before handing over again (each hand-over is one more wake-up).
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
    pub(super) session: Arc<ReplySession>,
    pub(super) correlation_id: String,
    pub(super) mailbox: Arc<Mailbox>,
    pub(super) deadline: Instant,
    /// Set once the call has left `pending` (answered, ended or timed out).
    pub(super) settled: bool,
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
