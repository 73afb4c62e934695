//! An inbox: the messages of a subscription, pulled at the receiver's pace.

use std::time::Duration;

use crossbeam_channel::{bounded, select, Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;

use super::Message;
use crate::broker::consumer::{Disposition, Subscription};
use crate::error::{Error, Result};

/// Messages of a subscription, to pull at the receiver's pace. Dropping it (or
/// [`close`](Self::close)) ends the subscription; messages not yet taken go back to the
/// queue.
#[derive(Debug)]
#[must_use = "dropping an Inbox ends its subscription at once"]
pub struct Inbox {
    messages: Receiver<Message>,
    /// Dropped at close: a subscription thread waiting to hand a message over gives it back
    /// to the queue and stops.
    open: Mutex<Option<Sender<()>>>,
    subscription: Subscription,
}

impl Inbox {
    /// Starts a subscription (with `start`) whose messages are handed over to the inbox.
    pub(super) fn start(
        start: impl FnOnce(Box<dyn FnMut(Message) -> Disposition + Send>) -> Result<Subscription>,
    ) -> Result<Inbox> {
        // Zero capacity: the hand-over to the caller is the moment of the ack.
        let (sender, messages) = bounded(0);
        let (open, closed) = bounded::<()>(0);
        let subscription = start(Box::new(move |message| {
            select! {
                send(sender, message) -> sent => match sent {
                    Ok(()) => Disposition::Ack,
                    // The inbox is gone: give the message back rather than lose it.
                    Err(_) => Disposition::Requeue,
                },
                recv(closed) -> _ => Disposition::Requeue,
            }
        }))?;
        Ok(Inbox {
            messages,
            open: Mutex::new(Some(open)),
            subscription,
        })
    }

    /// The next message; blocks until one comes. [`Error::Closed`] once the subscription has
    /// ended.
    pub fn recv(&self) -> Result<Message> {
        self.messages.recv().map_err(|_| Error::Closed)
    }

    /// The next message, waiting at most `timeout`: `Ok(None)` when none came in time,
    /// [`Error::Closed`] once the subscription has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        match self.messages.recv_timeout(timeout) {
            Ok(message) => Ok(Some(message)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// A message if one is waiting: `Ok(None)` when none is, [`Error::Closed`] once the
    /// subscription has ended.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        match self.messages.try_recv() {
            Ok(message) => Ok(Some(message)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Error::Closed),
        }
    }

    /// The messages, as they come, until the subscription ends.
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        self.messages.iter()
    }

    /// The queue this inbox is fed from.
    pub fn queue(&self) -> &str {
        self.subscription.queue()
    }

    /// Ends the subscription: messages not taken go back to the queue. Later calls return
    /// `Ok`.
    pub fn close(&self) -> Result<()> {
        self.open.lock().take();
        self.subscription.close()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Before the subscription's own drop, so a thread waiting to hand over wakes.
        self.open.lock().take();
    }
}
