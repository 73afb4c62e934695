//! The connection, kept up: when it breaks, the `fabric-link` thread reconnects with backoff,
//! trying every configured broker URL in turn, and wakes every thread that waits for it.
//!
//! amiquip does not reconnect and tells nobody when its I/O thread ends. It does drop the
//! sender of the connection-blocked listener then, so that listener doubles as the signal
//! that the connection is gone (and as the broker's memory and disk alarms while it is up).
//!
//! Each connection gets a new *generation* number. A thread that owns a channel remembers the
//! generation it opened it on; once the link has moved past that generation, the channel and
//! everything declared through it are gone, and the thread starts over (see
//! [`run_sessions`](super::sessions::run_sessions)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{Channel, Connection, ConnectionBlockedNotification};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;

use super::connect;
use super::state::ConnectionState;
use super::url::BrokerUrl;
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::observe;
use crate::thread::StoppableThread;

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

impl Unavailable {
    /// The error of an operation that waited `waited` for the connection in vain.
    pub(crate) fn into_error(self, waited: Duration) -> Error {
        match self {
            Unavailable::Closed | Unavailable::Stopped => Error::Closed,
            Unavailable::TimedOut(reason) => Error::Unavailable { reason, waited },
        }
    }
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

    /// How long one connection attempt may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
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

    /// Opens a second channel on the connection of `generation`, for a thread that set up its
    /// first channel there (a channel of another connection would not see its queues or
    /// deliveries); [`Error::ConnectionLost`] if the connection changed meanwhile.
    pub(crate) fn open_channel_on(&self, generation: u64) -> Result<Channel> {
        let (channel, opened_on) = self.open_channel()?;
        if opened_on != generation {
            let _ = channel.close();
            return Err(Error::ConnectionLost {
                reason: "the connection changed while a session set up its channels".to_owned(),
            });
        }
        Ok(channel)
    }

    /// How many consumers a queue has, or `None` if it does not exist (or its node is
    /// down), asked on a throwaway channel: a failed passive declare closes the channel it
    /// was made on.
    pub(crate) fn queue_consumers(&self, queue: &str) -> Result<Option<u32>> {
        let (channel, _) = self.open_channel()?;
        match channel.queue_declare_passive(queue) {
            Ok(found) => {
                let consumers = found.declared_consumer_count().unwrap_or(0);
                let _ = channel.close();
                Ok(Some(consumers))
            }
            Err(amiquip::Error::ServerClosedChannel { code: 404, .. }) => Ok(None),
            Err(e) => Err(Error::broker(format!("look up queue {queue}"), e)),
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
                        // Counted before anyone hears of the new connection.
                        observe::reconnected();
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
