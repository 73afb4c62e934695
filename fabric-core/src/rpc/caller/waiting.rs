//! How a caller waits for its reply: one of the waiting callers leads (reads the session's
//! replies for all), the others sleep on a mailbox of their own.

use std::sync::Arc;
use std::time::Instant;

use super::mailbox::{Letter, Mailbox};
use super::session::{Read, ReplySession};
use super::Outcome;

/// A call on its way: wait for its outcome, or drop it to forget the call.
pub(crate) struct PendingReply {
    session: Arc<ReplySession>,
    correlation_id: String,
    mailbox: Arc<Mailbox>,
    deadline: Instant,
    /// Set once the call has left the session's pending calls (answered, ended or timed
    /// out).
    settled: bool,
}

impl PendingReply {
    /// A call registered in `session` under `correlation_id`, whose outcome goes to
    /// `mailbox`; from now on, dropping it takes the call out of the session again.
    pub(super) fn new(
        session: Arc<ReplySession>,
        correlation_id: String,
        mailbox: Arc<Mailbox>,
        deadline: Instant,
    ) -> PendingReply {
        PendingReply {
            session,
            correlation_id,
            mailbox,
            deadline,
            settled: false,
        }
    }

    /// The outcome, or `None` when the deadline passed first.
    pub(crate) fn wait(mut self) -> Option<Outcome> {
        let session = Arc::clone(&self.session);
        let readers = session.readers();
        let mut leading = readers.join(&self.mailbox);
        let outcome = loop {
            if leading {
                let outcome = self.lead(&session);
                readers.hand_over();
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
            readers.leave(&self.mailbox);
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
            if let Read::TimedOut = session.read(self.deadline) {
                return self.timed_out();
            }
        }
    }

    /// The deadline passed: leave the session's pending calls, unless the reply was handed
    /// over just now.
    fn timed_out(&self) -> Option<Outcome> {
        if self.session.forget(&self.correlation_id) {
            None
        } else {
            self.handed_over()
        }
    }

    /// The outcome of a call no longer pending: whoever took it out posts it at once (only
    /// the caller itself takes its call out without posting).
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
            self.session.forget(&self.correlation_id);
        }
    }
}
