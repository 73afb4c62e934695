//! The one way a thread that owns channels runs: as *sessions*, each on a fresh channel, one
//! after another for as long as the thread lives.
//!
//! A session opens its channel, declares what it needs (everything fabric declares is a
//! `Vec<Declaration>`, so a restart replays the same list: auto-delete queues and exchanges
//! died with the old connection), works, and returns `Err` when its channel fails. The loop
//! then waits for a newer connection if the connection broke, or backs off if only the
//! channel failed (a deleted queue, a refused declaration), and starts the next session on the
//! same thread, so the user's handles stay valid.

use std::time::{Duration, Instant};

use amiquip::Channel;
use crossbeam_channel::{Receiver, Sender};

use super::link::{Link, Unavailable};
use super::state::ConnectionState;
use crate::error::{Error, Result};

/// What a session is given: a fresh channel and whether this is a restart (then what the
/// first session declared may be gone and must be declared again).
pub(crate) struct Session<'a> {
    /// The channel this session owns.
    pub channel: &'a Channel,
    /// `false` on the first session, `true` on every one after a failure.
    pub restart: bool,
    /// The generation of the connection the channel is on.
    pub generation: u64,
    ready: Option<Sender<Result<()>>>,
}

impl Session<'_> {
    /// Tells whoever started the thread that it runs (only the first session's call counts).
    pub(crate) fn ready(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
    }
}

/// What the thread's first session means to whoever started the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The first session must get to [`Session::ready`]; if it fails, the thread ends and its
    /// starter gets the error. For servers and subscriptions: what fails on the first run (a
    /// refused declaration, a connection that is not there) is the caller's to hear.
    Strict,
    /// As `Strict` on a working connection; but when the connection is down at the start, or
    /// breaks during the first session, the starter hears [`Error::ConnectionLost`] at once
    /// and the thread carries on with the next connection. For the reply thread: its callers
    /// wait for a session anyway, each up to its own timeout.
    Patient,
}

/// Runs `body` in sessions until it returns `Ok` (it was told to stop) or the fabric closes.
/// `ready` hears how the first session went, as `start` says.
///
/// After a failure the loop waits for a newer connection when the connection broke, or backs
/// off when only the channel failed (the backoff counts failures since the last session that
/// lasted 30 s), so a persistent fault does not spin.
pub(crate) fn run_sessions<B>(
    link: &Link,
    what: &str,
    start: Start,
    stop: &Receiver<()>,
    ready: Sender<Result<()>>,
    mut body: B,
) -> Result<()>
where
    B: FnMut(&mut Session<'_>) -> Result<()>,
{
    let mut ready = Some(ready);
    let mut restart = false;
    let mut failures = 0u32;
    loop {
        // Read before trying: if the reconnection completes meanwhile, the wait below must
        // not wait for the one after it.
        let tried_on = link.generation();
        let (channel, generation) = match link.open_channel() {
            Ok(opened) => opened,
            Err(e) => {
                let down = !link.is_up(tried_on) && link.state() != ConnectionState::Closed;
                if start == Start::Patient && down {
                    tell(&mut ready, lost(&e));
                }
                // Reconnecting: wait for the next connection; a thread being started waits
                // no longer than a connection attempt may take, then reports why it failed.
                // On a connection that is up (out of channel ids), back off and try again.
                let channel_only = ready.is_none() && link.is_up(tried_on);
                let deadline = if channel_only {
                    failures += 1;
                    Some(Instant::now() + link.backoff().delay(failures))
                } else {
                    ready
                        .is_some()
                        .then(|| Instant::now() + link.connect_timeout())
                };
                match link.wait_newer(tried_on, Some(stop), deadline) {
                    Ok(_) => continue,
                    Err(Unavailable::TimedOut(_)) if channel_only => {
                        log::warn!("fabric: {what} cannot open a channel: {e}; trying again");
                        continue;
                    }
                    Err(Unavailable::Closed) => {
                        tell(&mut ready, Error::Closed);
                        return Err(Error::Closed);
                    }
                    Err(Unavailable::TimedOut(_)) => {
                        tell(&mut ready, e.clone());
                        return Err(e);
                    }
                    Err(Unavailable::Stopped) => return Ok(()),
                }
            }
        };
        let started = Instant::now();
        let mut session = Session {
            channel: &channel,
            restart,
            generation,
            ready: ready.take(),
        };
        let outcome = body(&mut session);
        let first_session_failed = session.ready.take();
        let _ = channel.close();
        let error = match outcome {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let connection_lost = !link.is_up(generation);
        if let Some(starter) = first_session_failed {
            if start == Start::Patient && connection_lost {
                let _ = starter.send(Err(lost(&error)));
            } else {
                let _ = starter.send(Err(error.clone()));
                return Err(error);
            }
        }
        restart = true;
        if !connection_lost {
            // The connection may be dying without amiquip having said so yet; if it is not,
            // only this channel failed: back off so a persistent fault does not spin.
            if started.elapsed() > Duration::from_secs(30) {
                failures = 0;
            }
            let delay = link.backoff().delay(failures);
            failures += 1;
            log::warn!("fabric: {what} failed: {error}; starting again in {delay:?}");
            match link.wait_newer(generation, Some(stop), Some(Instant::now() + delay)) {
                Ok(_) | Err(Unavailable::TimedOut(_)) => {}
                Err(Unavailable::Stopped) => return Ok(()),
                Err(Unavailable::Closed) => return Err(Error::Closed),
            }
        } else {
            log::info!("fabric: {what} lost its connection; resuming when it is back");
            match link.wait_newer(generation, Some(stop), None) {
                Ok(_) => {}
                Err(Unavailable::Closed) => return Err(Error::Closed),
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Tells the starter, if it has not been told yet.
fn tell(ready: &mut Option<Sender<Result<()>>>, error: Error) {
    if let Some(ready) = ready.take() {
        let _ = ready.send(Err(error));
    }
}

/// `error` as the loss of the connection it is.
fn lost(error: &Error) -> Error {
    match error {
        Error::ConnectionLost { .. } | Error::Closed => error.clone(),
        other => Error::ConnectionLost {
            reason: other.to_string(),
        },
    }
}
