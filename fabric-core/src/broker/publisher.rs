//! Publishing with publisher confirms, shared by a fabric's data and event streams.
//!
//! Callers publish on one confirm-mode channel themselves, one at a time behind a mutex, so a
//! message goes from the caller to amiquip's I/O thread with no hop through a thread of ours.
//! Confirms are read by whoever needs one: a caller waiting on a [`Receipt`], or a publisher
//! waiting for room in the window (up to `window` messages may await the broker's answer at
//! once, so throughput is not bound by one round trip per message). No thread of ours stands
//! between the broker's confirm and the caller who waits for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{AmqpProperties, Channel, Confirm, ConfirmSmoother, Publish};
use crossbeam_channel::{at, bounded, never, select, Receiver, SendError, Sender};
use parking_lot::Mutex;

use crate::{Error, Result};

/// How long a closing publisher waits for the broker to confirm what it already sent.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The broker's answer to one published message, to wait for when it matters.
///
/// Dropping a receipt does not cancel anything; a message the broker refused is then logged.
#[must_use = "a receipt tells whether the broker took the message; wait() on it or drop it knowingly"]
pub struct Receipt {
    answer: Receiver<Result<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt").finish_non_exhaustive()
    }
}

impl Receipt {
    /// Blocks until the broker has taken the message (`Ok`) or refused it
    /// ([`Error::PublishRejected`]); [`Error::ConnectionLost`] if the connection broke first.
    pub fn wait(self) -> Result<()> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), giving up after `timeout` with [`Error::Timeout`].
    pub fn wait_timeout(self, timeout: Duration) -> Result<()> {
        self.wait_until(Some(Instant::now() + timeout))
            .map_err(|e| match e {
                Error::Timeout { .. } => Error::Timeout {
                    service: "broker".to_owned(),
                    method: "publish confirm".to_owned(),
                    timeout,
                },
                other => other,
            })
    }

    fn wait_until(self, deadline: Option<Instant>) -> Result<()> {
        let timer = deadline.map_or_else(never, at);
        loop {
            // Read confirms ourselves while we wait: ours may be among them.
            select! {
                recv(self.answer) -> answer => return answer.unwrap_or(Err(Error::Closed)),
                recv(self.shared.confirms) -> confirm => self.shared.take(confirm),
                recv(timer) -> _ => {
                    return Err(Error::Timeout {
                        service: "broker".to_owned(),
                        method: "publish confirm".to_owned(),
                        timeout: Duration::ZERO,
                    });
                }
            }
        }
    }
}

/// One message to publish.
pub(crate) struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub properties: AmqpProperties,
}

/// What the publishing callers share.
struct State {
    /// The confirm-mode channel; `None` once the publisher has ended.
    channel: Option<Channel>,
    /// Answers of the messages awaiting a confirm, oldest first: the broker numbers a
    /// channel's publishes 1, 2, 3..., and the mutex keeps publish order and this order one.
    awaiting: VecDeque<Sender<Result<()>>>,
    /// Puts confirms in tag order, one per message, whichever thread read them.
    smoother: ConfirmSmoother,
    /// Why the publisher ended, for callers that come later.
    ended: Option<Error>,
}

struct Shared {
    state: Mutex<State>,
    confirms: Receiver<Confirm>,
    window: usize,
}

impl Shared {
    /// Settles what one confirm (or the end of the confirm stream) says.
    fn take(&self, confirm: std::result::Result<Confirm, crossbeam_channel::RecvError>) {
        let mut state = self.state.lock();
        match confirm {
            Ok(confirm) => {
                let confirms: Vec<Confirm> = state.smoother.process(confirm).collect();
                for single in confirms {
                    settle(&mut state, single);
                }
            }
            Err(_) => end(
                &mut state,
                &Error::ConnectionLost {
                    reason: "the publishing channel closed".to_owned(),
                },
            ),
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
    /// Puts `channel` in confirm mode.
    pub(crate) fn start(channel: Channel, window: usize) -> Result<ConfirmingPublisher> {
        let confirms = channel
            .listen_for_publisher_confirms()
            .map_err(|e| Error::broker("listen for publisher confirms", e))?;
        channel
            .enable_publisher_confirms()
            .map_err(|e| Error::broker("enable publisher confirms", e))?;
        let window = window.max(1);
        Ok(ConfirmingPublisher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    channel: Some(channel),
                    awaiting: VecDeque::with_capacity(window),
                    smoother: ConfirmSmoother::new(),
                    ended: None,
                }),
                confirms,
                window,
            }),
        })
    }

    /// Publishes a message; while the window is full, reads confirms until it has room.
    pub(crate) fn publish(&self, message: Outgoing) -> Result<Receipt> {
        let shared = &self.shared;
        let mut state = shared.state.lock();
        while state.ended.is_none() && state.awaiting.len() >= shared.window {
            drop(state);
            shared.take(shared.confirms.recv());
            state = shared.state.lock();
        }
        if let Some(ended) = &state.ended {
            return Err(ended.clone());
        }
        let channel = state.channel.as_ref().ok_or(Error::Closed)?;
        let publish = Publish {
            body: &message.body,
            routing_key: message.routing_key,
            mandatory: false,
            immediate: false,
            properties: message.properties,
        };
        if let Err(e) = channel.basic_publish(message.exchange, publish) {
            let error = Error::broker("publish a message", e);
            end(&mut state, &error);
            return Err(error);
        }
        let (answer, receipt) = bounded(1);
        state.awaiting.push_back(answer);
        Ok(Receipt {
            answer: receipt,
            shared: Arc::clone(shared),
        })
    }

    /// Refuses new messages, waits (at most five seconds) for the broker to confirm those
    /// already sent, fails the rest with [`Error::Closed`], and closes the channel.
    pub(crate) fn stop(&self) {
        let shared = &self.shared;
        let grace_ends = Instant::now() + CLOSE_GRACE;
        loop {
            {
                let mut state = shared.state.lock();
                state.ended.get_or_insert(Error::Closed);
                if state.awaiting.is_empty() || state.channel.is_none() {
                    break;
                }
            }
            match shared.confirms.recv_deadline(grace_ends) {
                Ok(confirm) => shared.take(Ok(confirm)),
                Err(_) => break,
            }
        }
        let channel = {
            let mut state = shared.state.lock();
            end(&mut state, &Error::Closed);
            state.channel.take()
        };
        if let Some(channel) = channel {
            let _ = channel.close();
        }
    }
}

impl Drop for ConfirmingPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails every message still awaiting a confirm, refuses new ones, and lets the channel go.
fn end(state: &mut State, error: &Error) {
    for waiter in state.awaiting.drain(..) {
        let _ = waiter.send(Err(error.clone()));
    }
    if state.ended.is_none() {
        state.ended = Some(error.clone());
    }
}

/// Resolves the receipt of the oldest message awaiting a confirm.
fn settle(state: &mut State, confirm: Confirm) {
    let answer = match confirm {
        Confirm::Ack(_) => Ok(()),
        Confirm::Nack(_) => Err(Error::PublishRejected {
            reason: "the broker nacked the message".to_owned(),
        }),
    };
    if let Some(waiter) = state.awaiting.pop_front() {
        if let Err(SendError(Err(e))) = waiter.send(answer) {
            log::warn!("fabric: nobody waited for this answer to a publish: {e}");
        }
    }
}
