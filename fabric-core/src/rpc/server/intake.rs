//! A server's intake: the one thread that owns the channel its calls come in on.
//!
//! One channel per server, not one per worker: the broker then sends each instance its
//! calls in batches on one channel, which costs it (and amiquip) far less per call than
//! spreading them over a channel per worker (`--only shape` in `fabric-bench`, and
//! BENCHMARKS.md). The channel-wide prefetch is `workers × prefetch`: with the default
//! prefetch of 1, every call the instance holds has a worker free to run it, so no call waits
//! here behind a slow one while another instance of the clique could run it.
//!
//! Per connection, a *shift* ([`Shift`]): the intake consumes every method queue and hands
//! the workers clones of the consumers' receivers, so a call goes from amiquip's I/O thread
//! straight to a waiting worker. The workers publish replies on the shift's reply channel
//! (in a mutex, as callers publish calls) and hand each answered call back here, to be acked
//! on the channel it came on. Acks are the only per-call work of this thread, off the call's
//! latency path, and they go out in batches: within [`ACK_DELAY`] of the first answered
//! call, or at once when a quarter of the prefetch waits for its ack. Each thread wake-up
//! costs a few microseconds of CPU that the broker shares on a small machine, so the intake
//! wakes once per batch, not once per call. An instance that dies before a batch's acks leaves
//! those calls, already answered, to be delivered again, as it does for any call it held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery, Publish};
use crossbeam_channel::{at, bounded, never, select, unbounded, Receiver, Sender};
use parking_lot::Mutex;

use super::acks::Acks;
use super::Shared;
use crate::broker::sessions::{run_sessions, Session, Start};
use crate::broker::topology;
use crate::error::{Error, Result};

/// How long an answered call may wait for its ack, so that several go out together.
pub(super) const ACK_DELAY: Duration = Duration::from_millis(1);

/// What a worker tells the intake about the shift it works in, besides answered calls.
pub(super) enum Done {
    /// The broker cancelled the consumer of queue `index` (the queue was deleted).
    Cancelled(usize),
    /// A reply could not be published: the reply channel is broken.
    ReplyFailed(String),
    /// The worker has left the shift: every receiver it read has ended.
    Left,
}

/// One connection's calls, as the workers see them.
pub(super) struct Shift {
    /// The generation of the connection.
    pub(super) generation: u64,
    /// Each method queue's deliveries, in the order of `Shared::queues`.
    pub(super) calls: Vec<Receiver<ConsumerMessage>>,
    /// Where replies are published; `None` once the shift has ended.
    replies: Mutex<Option<Channel>>,
    /// Set when this shift's calls can no longer be acked (its channel failed): a worker
    /// does not run a call it takes after that, since the broker gives it to another
    /// consumer anyway.
    dead: AtomicBool,
    done: Sender<Done>,
    /// Answered calls waiting for their ack.
    answered: Mutex<Vec<Delivery>>,
    /// Wakes the intake: the first answered call of a batch, or a full batch.
    nudge: Sender<()>,
    /// How many answered calls make a batch that is acked at once.
    batch: usize,
}

impl Shift {
    /// Publishes a reply on the shift's reply channel; `Err` (why) if it was not sent.
    pub(super) fn publish_reply(&self, reply: Publish<'_>) -> std::result::Result<(), String> {
        let replies = self.replies.lock();
        let channel = replies
            .as_ref()
            .ok_or_else(|| "the server's reply channel is closed".to_owned())?;
        channel.basic_publish("", reply).map_err(|e| e.to_string())
    }

    /// Whether calls taken now can still be acked.
    pub(super) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Tells the intake; ignored once it has moved on to the next shift.
    pub(super) fn report(&self, done: Done) {
        let _ = self.done.send(done);
    }

    /// Hands an answered call to the intake to be acked.
    pub(super) fn answered(&self, delivery: Delivery) {
        let waiting = {
            let mut answered = self.answered.lock();
            answered.push(delivery);
            answered.len()
        };
        // A token already waiting will do: the intake looks at the count when it wakes.
        if waiting == 1 || waiting >= self.batch {
            let _ = self.nudge.try_send(());
        }
    }

    fn take_answered(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.answered.lock())
    }
}

/// The intake: what its thread needs besides the shared server state.
pub(super) struct Intake {
    pub(super) shared: Arc<Shared>,
    /// One sender per worker, for its next shift.
    pub(super) shifts: Vec<Sender<Arc<Shift>>>,
    /// The channel-wide prefetch: `workers × prefetch`.
    pub(super) held: u16,
}

impl Intake {
    /// The thread's body: a shift per connection until told to stop (`Ok`) or the fabric
    /// closes. `ready` hears how the first went.
    pub(super) fn run(&self, stop: &Receiver<()>, ready: Sender<Result<()>>) -> Result<()> {
        let what = format!("the intake of {}", self.shared.address);
        run_sessions(
            &self.shared.link,
            &what,
            Start::Strict,
            stop,
            ready,
            |session| self.session(session, stop),
        )
    }

    /// One shift: consumes every method queue on the session's channel, hands the receivers
    /// to the workers, and acks what they answered, until told to stop (`Ok`, after every
    /// worker has answered what it was sent) or the channel or connection fails (`Err`).
    fn session(&self, session: &mut Session<'_>, stop: &Receiver<()>) -> Result<()> {
        let channel = session.channel;
        let generation = session.generation;
        let link = &self.shared.link;
        if session.restart {
            // Auto-delete: the exchange and queues went with the last connection (or broker).
            topology::declare(channel, &self.shared.declarations)?;
        }
        // Channel-wide: the limit covers every method queue together (quorum queues refuse
        // it: there, each consumer's own).
        channel
            .qos(0, self.held, self.shared.channel_wide_prefetch)
            .map_err(|e| Error::broker("set the prefetch", e))?;
        let replies = link.open_channel_on(generation)?;
        let consumers = match self.consume(channel) {
            Ok(consumers) => consumers,
            Err(e) => {
                let _ = replies.close();
                return Err(e);
            }
        };
        let (done_tx, done) = unbounded();
        let (nudge_tx, nudge) = bounded(1);
        let shift = Arc::new(Shift {
            generation,
            calls: consumers.iter().map(|c| c.receiver().clone()).collect(),
            replies: Mutex::new(Some(replies)),
            dead: AtomicBool::new(false),
            done: done_tx,
            answered: Mutex::new(Vec::new()),
            nudge: nudge_tx,
            batch: usize::from(self.held / 4).max(1),
        });
        for worker in &self.shifts {
            let _ = worker.send(Arc::clone(&shift));
        }
        // Marked before `ready`, so a server is serving as soon as `serve` returns.
        let _consuming = self.shared.readiness.consuming(0, generation);
        session.ready();
        let wakes = Wakes { done, nudge };
        let outcome = self.serve(channel, &consumers, &shift, &wakes, stop);
        if let Err(e) = &outcome {
            shift.dead.store(true, Ordering::Release);
            log::warn!(
                "fabric: the intake of {} stops consuming: {e}",
                self.shared.address
            );
        }
        // Dropping the consumers cancels them on a live channel; the workers hold clones of
        // their receivers, so amiquip never delivers to a dropped one.
        drop(consumers);
        if let Some(replies) = shift.replies.lock().take() {
            let _ = replies.close();
        }
        outcome
    }

    /// Consumes every method queue. On failure the consumers already made are dropped,
    /// which cancels them.
    fn consume<'c>(&self, channel: &'c Channel) -> Result<Vec<Consumer<'c>>> {
        self.shared
            .queues
            .iter()
            .map(|queue| {
                channel
                    .basic_consume(queue.as_str(), ConsumerOptions::default())
                    .map_err(|e| Error::broker(format!("consume {queue}"), e))
            })
            .collect()
    }

    /// Acks what the workers answered until told to stop or the shift fails.
    fn serve(
        &self,
        channel: &Channel,
        consumers: &[Consumer<'_>],
        shift: &Shift,
        wakes: &Wakes,
        stop: &Receiver<()>,
    ) -> Result<()> {
        let link = &self.shared.link;
        let mut acks = Acks::default();
        // When the answered calls waiting now must be acked.
        let mut ack_by: Option<Instant> = None;
        // Registered before the first look at the link, so no change goes unseen.
        let changes = link.changes();
        loop {
            if !link.is_up(shift.generation) {
                return Err(Error::ConnectionLost {
                    reason: link.state().to_string(),
                });
            }
            let timer = ack_by.map_or_else(never, at);
            select! {
                recv(wakes.nudge) -> _ => {
                    if shift.answered.lock().len() >= shift.batch {
                        acks.ack(channel, shift.take_answered())?;
                        ack_by = None;
                    } else if ack_by.is_none() {
                        ack_by = Some(Instant::now() + ACK_DELAY);
                    }
                }
                recv(timer) -> _ => {
                    acks.ack(channel, shift.take_answered())?;
                    ack_by = None;
                }
                // `shift` holds a sender, so the channel never disconnects here.
                recv(wakes.done) -> message => match message {
                    Ok(Done::Cancelled(index)) => {
                        // The queue went (its node was lost, or it was deleted), but this
                        // channel lives: answer the calls already here, from every queue,
                        // then start over, declaring the queues again.
                        self.finish(channel, consumers, shift, wakes, acks, Some(index))?;
                        return Err(Error::Broker {
                            operation: format!("consume {}", self.shared.queues[index]),
                            reason: "the broker cancelled the consumer (the queue was deleted, \
                                     or its node lost)"
                                .to_owned(),
                        });
                    }
                    Ok(message) => self.take(message)?,
                    Err(_) => {}
                },
                recv(stop) -> _ => return self.finish(channel, consumers, shift, wakes, acks, None),
                recv(changes) -> _ => {}
            }
        }
    }

    /// Handles a report of a worker while the shift runs (a cancelled consumer is `serve`'s).
    fn take(&self, done: Done) -> Result<()> {
        match done {
            Done::Cancelled(_) => Ok(()),
            Done::ReplyFailed(reason) => Err(Error::ConnectionLost { reason }),
            // Only when its receivers ended, which a running shift's do not unless the
            // channel or connection broke: the next look at the link or an ack says which.
            Done::Left => Ok(()),
        }
    }

    /// Stops taking calls: cancels every consumer (but `cancelled`, which the broker
    /// cancelled), lets the workers answer the calls the broker had already sent, acks them,
    /// and returns once every worker has left.
    fn finish(
        &self,
        channel: &Channel,
        consumers: &[Consumer<'_>],
        shift: &Shift,
        wakes: &Wakes,
        mut acks: Acks,
        cancelled: Option<usize>,
    ) -> Result<()> {
        for (index, consumer) in consumers.iter().enumerate() {
            if Some(index) == cancelled {
                continue;
            }
            // After a queue was lost, the broker has likely cancelled the others too (a lost
            // node takes all the queues it held), and cancelling them again may fail on a
            // channel that lives: the calls in hand are still answered then. Otherwise a
            // failed cancel means a dead channel: its calls go back to the broker, so they
            // are not run here.
            if consumer.cancel().is_err() && cancelled.is_none() {
                shift.dead.store(true, Ordering::Release);
            }
        }
        let mut working = self.shifts.len();
        while working > 0 {
            select! {
                recv(wakes.done) -> message => match message {
                    Ok(Done::Left) => working -= 1,
                    Ok(_) => {}
                    Err(_) => break,
                },
                recv(wakes.nudge) -> _ => {}
            }
            self.ack_while_closing(channel, shift, &mut acks);
        }
        self.ack_while_closing(channel, shift, &mut acks);
        Ok(())
    }

    /// Acks what was answered, without delay: the server is closing.
    fn ack_while_closing(&self, channel: &Channel, shift: &Shift, acks: &mut Acks) {
        let answered = shift.take_answered();
        if answered.is_empty() {
            return;
        }
        if let Err(e) = acks.ack(channel, answered) {
            log::warn!(
                "fabric: {} could not finish its calls while closing: {e}",
                self.shared.address
            );
            shift.dead.store(true, Ordering::Release);
        }
    }
}

/// What wakes the intake during a shift.
struct Wakes {
    /// Reports of the workers.
    done: Receiver<Done>,
    /// Answered calls wait for their ack.
    nudge: Receiver<()>,
}
