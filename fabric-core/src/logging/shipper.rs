//! The `fabric-log-shipper` thread: owns the logger's channel (amiquip's channels are not
//! `Sync`) and publishes the queued records one at a time, a session per connection.

use std::sync::Arc;
use std::time::Duration;

use amiquip::Publish;
use crossbeam_channel::bounded;

use super::loops;
use super::queue::RecordQueue;
use super::wire::{self, Publisher};
use crate::broker::link::Link;
use crate::broker::sessions::{run_sessions, Session, Start};
use crate::broker::topology::{self, Declaration};
use crate::error::{Error, Result};
use crate::thread::StoppableThread;

/// Where the shipper publishes, and as whom.
pub(super) struct Target {
    pub exchange: String,
    pub declaration: Declaration,
    pub publisher: Publisher,
}

/// The running shipper thread.
pub(super) struct Shipper {
    thread: StoppableThread,
}

impl Shipper {
    /// Starts the thread; returns once it has declared the log exchange, or with why it
    /// could not.
    pub(super) fn start(
        link: Arc<Link>,
        target: Target,
        queue: Arc<RecordQueue>,
    ) -> Result<Shipper> {
        let (ready_tx, ready) = bounded(1);
        let thread = StoppableThread::spawn("fabric-log-shipper", move |stopped| {
            loops::never_ship_here();
            let outcome = run_sessions(
                &link,
                "the log shipper",
                Start::Strict,
                &stopped,
                ready_tx,
                |session| ship(session, &target, &queue),
            );
            if let Err(e) = outcome {
                queue.give_up(e);
            }
        })?;
        ready.recv().unwrap_or(Err(Error::Closed))?;
        Ok(Shipper { thread })
    }

    /// Tells the thread to stop (the queue must be stopped first, or it waits for records)
    /// and waits at most `grace` for it: it may be stuck in a publish to a broker that does
    /// not answer, and is then left to end with the connection.
    pub(super) fn stop_within(&self, grace: Duration) {
        self.thread.stop_within(grace);
    }
}

/// One session: declares the log exchange on this connection (a restarted broker may have
/// lost it), then publishes queued records until told to stop (`Ok`) or the channel breaks
/// (`Err`; `run_sessions` starts over on the next connection).
fn ship(session: &mut Session<'_>, target: &Target, queue: &RecordQueue) -> Result<()> {
    let channel = session.channel;
    topology::declare(channel, std::slice::from_ref(&target.declaration))?;
    session.ready();
    if session.restart {
        log::info!("fabric: the log shipper resumes on the new connection");
    }
    while let Some((entry, dropped)) = queue.next() {
        let (body, properties) = wire::encode(&target.publisher, &entry, dropped);
        let published = channel.basic_publish(
            target.exchange.as_str(),
            Publish::with_properties(&body, "", properties),
        );
        match published {
            Ok(()) => queue.shipped(),
            Err(e) => {
                // Not sent: the record waits for the next connection.
                queue.put_back(entry, dropped);
                return Err(Error::broker("publish a log record", e));
            }
        }
    }
    Ok(())
}
