//! The connection, kept up: when it breaks, the `fabric-link` thread reconnects with backoff,
//! trying every configured broker URL in turn, and wakes every thread that waits for it.
//!
//! amiquip does not reconnect and tells nobody when its I/O thread ends. It does drop the
//! sender of the connection-blocked listener then, so that listener doubles as the signal
//! that the connection is gone (and as the broker's memory and disk alarms while it is up).
//!
//! Each connection gets a new *generation* number. A thread that owns a channel remembers the
//! generation it opened it on; once the link has moved past that generation, the channel and
//! everything declared through it are gone, and the thread starts over (see [`run_sessions`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{Channel, Connection, ConnectionBlockedNotification};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;

use super::connect;
use super::url::BrokerUrl;
use crate::thread::StoppableThread;
use crate::token::jitter;
use crate::{Error, Result};

/// Where a [`Fabric`](crate::Fabric)'s connection to the broker stands.
///
/// Read it with [`Fabric::connection_state`](crate::Fabric::connection_state), or be told of
/// every change with [`Fabric::on_connection_change`](crate::Fabric::on_connection_change).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected to the broker at `url` (password masked). `generation` counts connections:
    /// 1 for the first, one more after each reconnection.
    Connected {
        /// The broker URL, password masked.
        url: String,
        /// Which connection this is: 1, then one more per reconnection.
        generation: u64,
    },
    /// The connection broke and fabric is reconnecting. Calls in flight at the break have
    /// failed with [`Error::CallInterrupted`]; new calls wait for the connection, up to their
    /// timeout.
    Reconnecting {
        /// Why the last connection ended.
        reason: String,
        /// Failed attempts since the connection broke.
        attempts: u32,
    },
    /// The broker blocked publishing on the connection (its memory or disk alarm); calls and
    /// publishes wait until it unblocks.
    Blocked {
        /// The broker's reason.
        reason: String,
    },
    /// Closed by [`Fabric::close`](crate::Fabric::close) or the drop of the last handle.
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connected { url, generation } => {
                write!(f, "connected to {url} (connection {generation})")
            }
            ConnectionState::Reconnecting { reason, attempts } => {
                write!(
                    f,
                    "reconnecting after {reason} ({attempts} failed attempts)"
                )
            }
            ConnectionState::Blocked { reason } => write!(f, "blocked by the broker: {reason}"),
            ConnectionState::Closed => f.write_str("closed"),
        }
    }
}

/// How long to wait between reconnection attempts: `initial`, doubling up to `max`, each with
/// up to a quarter of random jitter so a clique that lost its broker does not return in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The wait after the first failure.
    pub(crate) initial: Duration,
    /// The longest wait.
    pub(crate) max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before attempt `failures + 1`.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX));
        let base = doubled.min(self.max);
        base + jitter(base / 4)
    }
}

/// A callback told of every change of the connection state.
pub(crate) type StateListener = Arc<dyn Fn(&ConnectionState) + Send + Sync>;

/// What the link knows about its connection right now.
struct Current {
    /// `None` while reconnecting and once closed.
    connection: Option<Connection>,
    generation: u64,
    state: ConnectionState,
}

/// The connection of one fabric, kept up by the `fabric-link` thread.
pub(crate) struct Link {
    urls: Vec<BrokerUrl>,
    /// The participant's name, given to the broker as the connection's name.
    name: String,
    heartbeat: Duration,
    connect_timeout: Duration,
    backoff: Backoff,
    current: Mutex<Current>,
    /// One sender per waiting thread; each gets a token on every change (bounded(1), so a
    /// slow reader sees one token for many changes, and then reads the state itself).
    wakers: Mutex<Vec<Sender<()>>>,
    listeners: Mutex<Vec<StateListener>>,
    thread: Mutex<Option<StoppableThread>>,
}

/// How a wait for the connection ended, when it did not end connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The fabric is closed.
    Closed,
    /// The thread that waited was told to stop.
    Stopped,
    /// The deadline passed while the broker was unreachable; the last reason it broke.
    TimedOut(String),
}

impl Link {
    /// Connects to the first URL that answers, then starts the thread that keeps the
    /// connection up. Fails if no URL answers: a participant that never connected is more
    /// likely misconfigured than unlucky.
    pub(crate) fn connect(
        urls: Vec<BrokerUrl>,
        name: String,
        heartbeat: Duration,
        connect_timeout: Duration,
        backoff: Backoff,
    ) -> Result<Arc<Link>> {
        let mut first_error = None;
        let mut opened = None;
        for url in &urls {
            match connect::open(url, &name, heartbeat, connect_timeout) {
                Ok(connection) => {
                    opened = Some((connection, url.display.clone()));
                    break;
                }
                // Refused credentials are not a reason to try the next node.
                Err(e @ Error::AccessRefused { .. }) => return Err(e),
                Err(e) => {
                    log::warn!("fabric: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some((mut connection, url)) = opened else {
            return Err(first_error.unwrap_or(Error::InvalidUrl {
                url: String::new(),
                reason: "no broker URL given".to_owned(),
            }));
        };
        let alarms = connection
            .listen_for_connection_blocked()
            .map_err(|e| Error::broker("listen to the connection", e))?;
        log::info!("fabric: {name} connected to {url}");
        let link = Arc::new(Link {
            urls,
            name,
            heartbeat,
            connect_timeout,
            backoff,
            current: Mutex::new(Current {
                connection: Some(connection),
                generation: 1,
                state: ConnectionState::Connected { url, generation: 1 },
            }),
            wakers: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            thread: Mutex::new(None),
        });
        let keeper = Arc::clone(&link);
        let thread =
            StoppableThread::spawn("fabric-link", move |stop| keeper.keep_up(alarms, &stop))?;
        *link.thread.lock() = Some(thread);
        Ok(link)
    }

    /// The state right now.
    pub(crate) fn state(&self) -> ConnectionState {
        self.current.lock().state.clone()
    }

    /// The generation of the connection now up, or the last one if none is.
    pub(crate) fn generation(&self) -> u64 {
        self.current.lock().generation
    }

    /// Whether the connection of `generation` is still the one up (not broken, replaced or
    /// closed). A connection that died a moment ago counts as up until `fabric-link` notices.
    pub(crate) fn is_up(&self, generation: u64) -> bool {
        let current = self.current.lock();
        current.connection.is_some() && current.generation == generation
    }

    /// A receiver that gets a token after each state change from now on (one token for
    /// several changes if it is not read in between): for threads that watch the link
    /// beside other work. Register it before reading the state, so no change is missed.
    pub(crate) fn changes(&self) -> Receiver<()> {
        let (waker, woken) = bounded(1);
        self.wakers.lock().push(waker);
        woken
    }

    /// The backoff between reconnection attempts, for threads that retry on their own.
    pub(crate) fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Tells `listener` of every state change from now on.
    pub(crate) fn on_change(&self, listener: StateListener) {
        self.listeners.lock().push(listener);
    }

    /// Opens a channel on the current connection, with the generation it belongs to. Fails
    /// at once with [`Error::Closed`] when closed, or [`Error::ConnectionLost`] while
    /// reconnecting.
    pub(crate) fn open_channel(&self) -> Result<(Channel, u64)> {
        let mut current = self.current.lock();
        let generation = current.generation;
        if let Some(connection) = current.connection.as_mut() {
            return connection
                .open_channel(None)
                .map(|channel| (channel, generation))
                .map_err(|e| Error::broker("open a channel", e));
        }
        match current.state {
            ConnectionState::Closed => Err(Error::Closed),
            ref state => Err(Error::ConnectionLost {
                reason: state.to_string(),
            }),
        }
    }

    /// Waits until a connection newer than generation `after` is up (pass 0 for any), the
    /// fabric closes, `stop` fires, or `deadline` passes.
    pub(crate) fn wait_newer(
        &self,
        after: u64,
        stop: Option<&Receiver<()>>,
        deadline: Option<Instant>,
    ) -> std::result::Result<u64, Unavailable> {
        let (waker, woken) = bounded(1);
        self.wakers.lock().push(waker.clone());
        let outcome = self.wait_woken(after, stop, deadline, &woken);
        // Leave the list: otherwise every wait leaves a sender behind until the next change
        // of state, and on a steady connection they pile up.
        self.wakers.lock().retain(|w| !w.same_channel(&waker));
        outcome
    }

    /// The loop of [`wait_newer`](Self::wait_newer), woken by `woken` on every change.
    fn wait_woken(
        &self,
        after: u64,
        stop: Option<&Receiver<()>>,
        deadline: Option<Instant>,
        woken: &Receiver<()>,
    ) -> std::result::Result<u64, Unavailable> {
        let never = crossbeam_channel::never();
        let stop = stop.unwrap_or(&never);
        loop {
            {
                let current = self.current.lock();
                match &current.state {
                    ConnectionState::Closed => return Err(Unavailable::Closed),
                    _ if current.connection.is_some() && current.generation > after => {
                        return Ok(current.generation)
                    }
                    _ => {}
                }
            }
            let timeout = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            select! {
                recv(stop) -> _ => return Err(Unavailable::Stopped),
                recv(woken) -> _ => {}
                default(timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Unavailable::TimedOut(self.state().to_string()));
                    }
                }
            }
        }
    }

    /// Closes the connection for good: stops the reconnecting thread, then closes the
    /// connection if it is up.
    pub(crate) fn close(&self) -> Result<()> {
        let connection = {
            let mut current = self.current.lock();
            if current.state == ConnectionState::Closed {
                return Ok(());
            }
            current.connection.take()
        };
        self.set_state(ConnectionState::Closed);
        if let Some(thread) = self.thread.lock().take() {
            thread.stop();
        }
        match connection {
            Some(connection) => connection
                .close()
                .map_err(|e| Error::broker("close the connection", e)),
            None => Ok(()),
        }
    }

    /// The body of `fabric-link`: watches the connection, and when it breaks, replaces it.
    fn keep_up(&self, mut alarms: Receiver<ConnectionBlockedNotification>, stop: &Receiver<()>) {
        loop {
            let reason = select! {
                recv(stop) -> _ => return,
                recv(alarms) -> alarm => match alarm {
                    Ok(ConnectionBlockedNotification::Blocked(reason)) => {
                        log::warn!("fabric: the broker blocked {}: {reason}", self.name);
                        self.set_state(ConnectionState::Blocked { reason });
                        continue;
                    }
                    Ok(ConnectionBlockedNotification::Unblocked) => {
                        log::info!("fabric: the broker unblocked {}", self.name);
                        let current = self.current.lock();
                        let state = ConnectionState::Connected {
                            url: self.url_of(&current),
                            generation: current.generation,
                        };
                        drop(current);
                        self.set_state(state);
                        continue;
                    }
                    // amiquip's I/O thread ended: the connection is gone.
                    Err(_) => self.take_broken(),
                },
            };
            let Some(reason) = reason else { return };
            log::warn!("fabric: {} lost its connection: {reason}", self.name);
            match self.reconnect(reason, stop) {
                Some(next) => alarms = next,
                None => return,
            }
        }
    }

    /// Takes the dead connection out and says why it died; `None` if it was closed on
    /// purpose meanwhile.
    fn take_broken(&self) -> Option<String> {
        let dead = {
            let mut current = self.current.lock();
            if current.state == ConnectionState::Closed {
                return None;
            }
            current.connection.take()
        };
        // Closing a connection whose I/O thread has ended joins it at once and returns its
        // error, the reason `reconnect` announces.
        let reason = match dead.map(Connection::close) {
            Some(Err(e)) => e.to_string(),
            _ => "the connection ended".to_owned(),
        };
        Some(reason)
    }

    /// Tries the URLs in turn, with backoff between rounds, until one answers or the link
    /// is stopped (then `None`).
    fn reconnect(
        &self,
        reason: String,
        stop: &Receiver<()>,
    ) -> Option<Receiver<ConnectionBlockedNotification>> {
        let started = Instant::now();
        let mut failures = 0u32;
        self.set_state(ConnectionState::Reconnecting {
            reason: reason.clone(),
            attempts: 0,
        });
        loop {
            for url in &self.urls {
                if stop.try_recv() != Err(crossbeam_channel::TryRecvError::Empty) {
                    return None;
                }
                let attempt = connect::open(url, &self.name, self.heartbeat, self.connect_timeout)
                    .and_then(|mut connection| {
                        let alarms = connection
                            .listen_for_connection_blocked()
                            .map_err(|e| Error::broker("listen to the connection", e))?;
                        Ok((connection, alarms))
                    });
                match attempt {
                    Ok((connection, alarms)) => {
                        let mut current = self.current.lock();
                        if current.state == ConnectionState::Closed {
                            drop(current);
                            let _ = connection.close();
                            return None;
                        }
                        current.connection = Some(connection);
                        current.generation += 1;
                        let state = ConnectionState::Connected {
                            url: url.display.clone(),
                            generation: current.generation,
                        };
                        drop(current);
                        log::info!(
                            "fabric: {} reconnected to {} after {:?}",
                            self.name,
                            url.display,
                            started.elapsed()
                        );
                        self.set_state(state);
                        return Some(alarms);
                    }
                    Err(e) => {
                        failures += 1;
                        log::warn!("fabric: {} cannot reconnect yet: {e}", self.name);
                        self.set_state(ConnectionState::Reconnecting {
                            reason: reason.clone(),
                            attempts: failures,
                        });
                    }
                }
            }
            if stop.recv_timeout(self.backoff.delay(failures)).is_ok() {
                return None;
            }
            // A disconnected stop channel means stop too.
            if stop.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected) {
                return None;
            }
        }
    }

    fn url_of(&self, current: &Current) -> String {
        match &current.state {
            ConnectionState::Connected { url, .. } => url.clone(),
            _ => self
                .urls
                .first()
                .map(|u| u.display.clone())
                .unwrap_or_default(),
        }
    }

    /// Records a new state and tells the waiting threads and the listeners.
    fn set_state(&self, state: ConnectionState) {
        {
            let mut current = self.current.lock();
            if current.state == ConnectionState::Closed && state != ConnectionState::Closed {
                return;
            }
            current.state = state.clone();
        }
        self.wakers.lock().retain(|waker| {
            !matches!(
                waker.try_send(()),
                Err(crossbeam_channel::TrySendError::Disconnected(_))
            )
        });
        let listeners = self.listeners.lock().clone();
        for listener in listeners {
            listener(&state);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// What a session of a long-lived thread is given: a fresh channel and whether this is a
/// restart (then what the first run declared may be gone and must be declared again).
pub(crate) struct Session<'a> {
    /// The channel this session owns.
    pub channel: &'a Channel,
    /// `false` on the first run, `true` on every run after a failure.
    pub restart: bool,
    /// The generation of the connection the channel is on.
    pub generation: u64,
    ready: Option<Sender<Result<()>>>,
}

impl Session<'_> {
    /// Tells whoever started the thread that it runs (only the first run's call counts).
    pub(crate) fn ready(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
    }
}

/// Runs `body` on a fresh channel, again and again, until it returns `Ok` (it was told to
/// stop) or the fabric closes. After a failure it waits for a newer connection when the
/// connection broke, or backs off when only the channel did (a deleted queue, a refused
/// declaration), then runs it again with `restart` set.
///
/// `ready` hears the first run's outcome: `Ok` once it calls [`Session::ready`], or the error
/// it failed with before that, which also ends the thread: what fails on the first run
/// (a bad declaration) would fail again.
pub(crate) fn run_sessions<B>(
    link: &Link,
    what: &str,
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
                // Reconnecting: wait for the next connection; a thread being started waits
                // no longer than a connection attempt may take, then reports why it failed.
                // On a connection that is up (out of channel ids), back off and try again.
                let channel_only = ready.is_none() && link.is_up(tried_on);
                let deadline = if channel_only {
                    failures += 1;
                    Some(Instant::now() + link.backoff.delay(failures))
                } else {
                    ready
                        .is_some()
                        .then(|| Instant::now() + link.connect_timeout)
                };
                match link.wait_newer(tried_on, Some(stop), deadline) {
                    Ok(_) => continue,
                    Err(Unavailable::TimedOut(_)) if channel_only => {
                        log::warn!("fabric: {what} cannot open a channel: {e}; trying again");
                        continue;
                    }
                    Err(Unavailable::Closed) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Err(Error::Closed));
                        }
                        return Err(Error::Closed);
                    }
                    Err(Unavailable::TimedOut(_)) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Err(e.clone()));
                        }
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
        let first_run_failed = session.ready.take();
        let _ = channel.close();
        let error = match outcome {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(ready) = first_run_failed {
            if !restart {
                let _ = ready.send(Err(error.clone()));
                return Err(error);
            }
        }
        restart = true;
        if link.generation() == generation && link.state() != ConnectionState::Closed {
            // The connection may be dying without amiquip having said so yet; if it is not,
            // only this channel failed: back off so a persistent fault does not spin.
            if started.elapsed() > Duration::from_secs(30) {
                failures = 0;
            }
            let delay = link.backoff.delay(failures);
            failures += 1;
            log::warn!("fabric: {what} failed: {error}; starting again in {delay:?}");
            if link_stop_or_newer(link, generation, stop, delay)? {
                return Ok(());
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

/// Waits `delay`, or less if a newer connection comes up; `Ok(true)` if told to stop.
fn link_stop_or_newer(
    link: &Link,
    generation: u64,
    stop: &Receiver<()>,
    delay: Duration,
) -> Result<bool> {
    match link.wait_newer(generation, Some(stop), Some(Instant::now() + delay)) {
        Ok(_) | Err(Unavailable::TimedOut(_)) => Ok(false),
        Err(Unavailable::Stopped) => Ok(true),
        Err(Unavailable::Closed) => Err(Error::Closed),
    }
}
