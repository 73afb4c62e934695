//! Where a waiting caller is woken: its own mailbox, and the roster of callers that wait to
//! read a session's replies.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

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
pub(super) enum Letter {
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
    pub(super) fn take_outcome(&self) -> Option<Outcome> {
        self.letters.lock().outcome.take()
    }

    /// Waits for a letter until `deadline` (`None`: for ever), the outcome before `Lead`.
    pub(super) fn wait(&self, deadline: Option<Instant>) -> Option<Letter> {
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
    roster: Mutex<Roster>,
}

#[derive(Default)]
struct Roster {
    leading: bool,
    /// The followers waiting.
    idle: Vec<Arc<Mailbox>>,
}

impl Readers {
    /// A caller starts waiting: it leads (`true`) if nobody does, else it follows.
    pub(super) fn join(&self, mailbox: &Arc<Mailbox>) -> bool {
        let mut roster = self.roster.lock();
        if roster.leading {
            roster.idle.push(Arc::clone(mailbox));
            false
        } else {
            roster.leading = true;
            true
        }
    }

    /// The leader stops reading: a follower, if any, leads on. The newest one: replies come
    /// back roughly in the order calls went out, so it has the longest to wait for its own
    /// and leads longest before handing over again (each hand-over is one more wake-up).
    pub(super) fn hand_over(&self) {
        self.roster.lock().pass_on();
    }

    /// A follower stops waiting; if it was chosen to lead meanwhile, it hands the reading
    /// over at once, under the same lock.
    pub(super) fn leave(&self, mailbox: &Arc<Mailbox>) {
        let mut roster = self.roster.lock();
        match roster
            .idle
            .iter()
            .position(|idle| Arc::ptr_eq(idle, mailbox))
        {
            Some(index) => {
                roster.idle.swap_remove(index);
            }
            None => roster.pass_on(),
        }
    }
}

impl Roster {
    /// The lead passes to the newest follower, or to nobody.
    fn pass_on(&mut self) {
        match self.idle.pop() {
            Some(next) => next.post_lead(),
            None => self.leading = false,
        }
    }
}
