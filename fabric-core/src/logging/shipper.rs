//! The remote logger: a [`log::Log`] that queues records in memory and a thread that ships
//! them to the broker.
//!
//! `log()` runs on the application's threads and must never wait for the network, so all it
//! does is format the record and push it on a bounded queue under a short mutex. When the
//! queue is full the oldest record goes (the newest say most about the present), and the
//! count of records dropped rides on the next record shipped. The `fabric-log-shipper`
//! thread owns the logger's channel (amiquip's channels are not `Sync`) and publishes one
//! record at a time.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use amiquip::Publish;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::wire::{self, Entry, Publisher};
use crate::broker::link::{run_sessions, Session};
use crate::broker::topology::{self, Declaration};
use crate::{Error, Fabric, Result};

/// Records the queue holds by default.
const DEFAULT_CAPACITY: usize = 1024;
/// How long `flush` (and so shutdown) waits for the queue to drain by default.
const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a shutdown waits for the shipper thread to end after its queue is gone.
const JOIN_GRACE: Duration = Duration::from_secs(5);
/// Targets never shipped: fabric and the AMQP client it ships with (and that client's I/O
/// library), whose records a shipment itself can cause.
const FABRIC_TARGETS: [&str; 4] = ["fabric_core", "amiquip", "mio", "mio_extras"];
/// The name of amiquip's I/O thread; nothing logged on it is shipped.
const AMIQP_IO_THREAD: &str = "amiquip-io";

thread_local! {
    /// Whether records logged on this thread may be shipped: not on the shipper thread nor
    /// on amiquip's I/O thread, where shipping one record would log more. Worked out once
    /// per thread.
    static MAY_SHIP: Cell<Option<bool>> = const { Cell::new(None) };
    /// Set while this thread is inside `RemoteLogger::log`: a record logged from there (by
    /// a wrapped logger, say) is ignored rather than risk a loop.
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

fn may_ship_here() -> bool {
    MAY_SHIP
        .try_with(|may| match may.get() {
            Some(known) => known,
            None => {
                let known = std::thread::current().name() != Some(AMIQP_IO_THREAD);
                may.set(Some(known));
                known
            }
        })
        .unwrap_or(false)
}

/// Marks this thread as inside `log` until dropped; `None` if it already was.
struct InLog;

impl InLog {
    fn enter() -> Option<InLog> {
        let entered = IN_LOG
            .try_with(|inside| !inside.replace(true))
            .unwrap_or(false);
        entered.then_some(InLog)
    }
}

impl Drop for InLog {
    fn drop(&mut self) {
        let _ = IN_LOG.try_with(|inside| inside.set(false));
    }
}

/// A [`log::Log`] that ships records to the domain's log exchange, where any subscriber
/// ([`Fabric::subscribe_logs`](crate::Fabric::subscribe_logs), or a Python consumer) reads
/// them, optionally also writing them to stderr or handing them to another logger.
///
/// Records go out in amqp-fabric's format (the headers `service_id`, `service_type` and
/// `level_name`, and the message as a JSON string body), so the domain's logs read the same
/// whatever language a service is written in. Rust's levels take Python's names: `Warn` is
/// `WARNING`, `Trace` is `DEBUG` (Python has nothing below it; the extra header `rust_level`
/// keeps `TRACE`); Rust has nothing that becomes `CRITICAL`. The record's target, module,
/// file and line travel as extra headers.
///
/// ## Never in the application's way
///
/// [`log`](Log::log) formats the record and puts it on a bounded in-memory queue, under a
/// mutex held only for that; the `fabric-log-shipper` thread publishes from the queue on
/// its own channel. When the broker is slower than the application, the queue fills and the
/// **oldest** record is dropped for each new one. The next record that gets through carries
/// the number dropped before it: a header `dropped` and a note at the end of its message
/// (`... [12 earlier log records dropped]`), which [`LogRecord`](crate::LogRecord) takes off
/// again. [`dropped`](Self::dropped) counts every record dropped.
///
/// ## Across reconnections
///
/// When the connection breaks, the shipper waits for the fabric to reconnect, declares the
/// log exchange again and carries on. Meanwhile records keep queueing, up to the capacity
/// and then dropping the oldest, as when the broker is slow. A record whose publish failed
/// was not sent, so it goes back to the head of the queue for the next connection (unless
/// the queue filled up meanwhile: then it is the oldest and is dropped). Records are not
/// confirmed by the broker: the few handed to a connection just before it broke may be
/// lost without being counted (at most once). Only when the fabric itself closes does
/// shipping stop for good: the records still queued and every later one are counted as
/// dropped, and [`failure`](Self::failure) says why.
///
/// ## Loops
///
/// Records of fabric's own crates (targets `fabric_core`, `amiquip`, `mio`, `mio_extras`)
/// and records logged on the shipper's and the AMQP client's threads are never shipped, as
/// shipping them could cause more of them. They still go to stderr and the wrapped logger.
/// A record logged from inside this logger's own `log` (by the wrapped logger, say) is
/// ignored.
///
/// ## Use
///
/// Install it as the global logger with [`RemoteLoggerBuilder::install`], or build it with
/// [`build`](RemoteLoggerBuilder::build) and call it yourself (in tests, or inside a logger
/// that combines several). It is a cheap handle: clones share one queue and thread, which
/// stop when the last clone is dropped or at [`shutdown`](Self::shutdown). It keeps the
/// fabric's connection open while it lives.
///
/// ```no_run
/// # fn main() -> fabric_core::Result<()> {
/// use fabric_core::{Fabric, FabricConfig, RemoteLogger};
/// use log::LevelFilter;
///
/// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "billing", "b1"))?;
/// let logger = RemoteLogger::builder(&fabric)
///     .level(LevelFilter::Info)
///     .stderr(LevelFilter::Warn)
///     .install()?;
/// log::info!("invoice {} sent", 1234);
/// // Before the process ends, give the queue a chance to drain.
/// log::logger().flush();
/// # drop(logger);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RemoteLogger {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The most detailed level shipped.
    level: LevelFilter,
    /// The most detailed level written to stderr (`Off` for none).
    stderr: LevelFilter,
    also: Option<Box<dyn Log>>,
    excluded: Vec<String>,
    flush_timeout: Duration,
    thread: Mutex<Option<Shipper>>,
    /// Keeps the connection open while the logger uses it.
    _fabric: Fabric,
}

/// The shipper thread, a receiver that disconnects when it ends, and the sender whose drop
/// tells it to stop while it waits for a connection.
struct Shipper {
    thread: JoinHandle<()>,
    ended: Receiver<()>,
    stop: Sender<()>,
}

/// What the application's threads and the shipper thread share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the shipper: a record was queued, or it must stop.
    wake: Condvar,
    /// Wakes flushers: the queue is empty and nothing is being published, or shipping ended.
    drained: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    shipped: AtomicU64,
}

struct State {
    queue: VecDeque<Entry>,
    /// Records dropped that no shipped record has told of yet.
    untold: u64,
    /// The shipper has taken a record from the queue and is publishing it.
    busy: bool,
    phase: Phase,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Shipping,
    /// [`RemoteLogger::shutdown`] was called.
    Stopped,
    /// The fabric closed under the logger (or the first declaration failed).
    Failed(Error),
}

impl Shared {
    /// Counts `n` records as dropped; the caller holds the state.
    fn drop_records(&self, state: &mut State, n: u64) {
        state.untold += n;
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Waits until `deadline` for the queue to drain; `true` if it did while shipping.
    fn wait_drained(&self, state: &mut MutexGuard<'_, State>, deadline: Instant) -> bool {
        while state.phase == Phase::Shipping && (state.busy || !state.queue.is_empty()) {
            if self.drained.wait_until(state, deadline).timed_out() {
                break;
            }
        }
        state.phase == Phase::Shipping && !state.busy && state.queue.is_empty()
    }
}

/// Settings of a [`RemoteLogger`], from [`RemoteLogger::builder`].
#[must_use = "a builder does nothing until build() or install()"]
pub struct RemoteLoggerBuilder {
    fabric: Fabric,
    level: LevelFilter,
    capacity: usize,
    stderr: LevelFilter,
    also: Option<Box<dyn Log>>,
    excluded: Vec<String>,
    flush_timeout: Duration,
}

impl std::fmt::Debug for RemoteLoggerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLoggerBuilder")
            .field("level", &self.level)
            .field("capacity", &self.capacity)
            .field("stderr", &self.stderr)
            .field("also", &self.also.is_some())
            .field("excluded", &self.excluded)
            .finish_non_exhaustive()
    }
}

impl RemoteLoggerBuilder {
    /// The most detailed level shipped to the broker. Default `Info`.
    pub fn level(mut self, level: LevelFilter) -> Self {
        self.level = level;
        self
    }

    /// How many records may wait in memory for the broker (at least 1). Default 1024. When
    /// it is full, the oldest record is dropped for each new one.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Also write records up to `level` to stderr, as `LEVEL target: message` lines,
    /// whether or not they are shipped. Default `Off`.
    pub fn stderr(mut self, level: LevelFilter) -> Self {
        self.stderr = level;
        self
    }

    /// Also hand every record to `logger` (an `env_logger`, a file logger, ...), which
    /// decides by its own `enabled` what to do with it. Its `flush` is called by this
    /// logger's.
    pub fn also_to(mut self, logger: Box<dyn Log>) -> Self {
        self.also = Some(logger);
        self
    }

    /// Never ship records whose target is `prefix` or starts with `prefix::`, on top of
    /// fabric's own crates.
    pub fn exclude_target(mut self, prefix: &str) -> Self {
        self.excluded.push(prefix.to_owned());
        self
    }

    /// How long [`Log::flush`] waits for the queue to drain. Default 5 s.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Starts the shipper thread and returns once it has declared the log exchange; the
    /// logger is not installed anywhere. Fails if the fabric is not connected right now.
    pub fn build(self) -> Result<RemoteLogger> {
        let address = self.fabric.address();
        let target = Target {
            exchange: wire::exchange_name(address.domain()),
            declaration: wire::exchange_declaration(address.domain()),
            publisher: Publisher {
                service_type: address.service_type().to_owned(),
                service_id: address.service_id().to_owned(),
            },
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(self.capacity.min(DEFAULT_CAPACITY)),
                untold: 0,
                busy: false,
                phase: Phase::Shipping,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            capacity: self.capacity,
            dropped: AtomicU64::new(0),
            shipped: AtomicU64::new(0),
        });
        let (ended_tx, ended) = bounded::<()>(0);
        let (stop, stopped) = bounded::<()>(0);
        let (ready_tx, ready) = bounded(1);
        let thread = {
            let shared = Arc::clone(&shared);
            let link = Arc::clone(self.fabric.link());
            std::thread::Builder::new()
                .name("fabric-log-shipper".to_owned())
                .spawn(move || {
                    let _ended = ended_tx;
                    let _ = MAY_SHIP.try_with(|may| may.set(Some(false)));
                    let outcome =
                        run_sessions(&link, "the log shipper", &stopped, ready_tx, |session| {
                            ship(session, &target, &shared)
                        });
                    if let Err(e) = outcome {
                        give_up(&shared, e);
                    }
                })
                .map_err(|e| Error::Broker {
                    operation: "start the log shipper thread".to_owned(),
                    reason: e.to_string(),
                })?
        };
        if let Err(e) = ready.recv().unwrap_or(Err(Error::Closed)) {
            drop(stop);
            let _ = thread.join();
            return Err(e);
        }
        let mut excluded: Vec<String> = FABRIC_TARGETS.iter().map(|t| (*t).to_owned()).collect();
        excluded.extend(self.excluded);
        Ok(RemoteLogger {
            inner: Arc::new(Inner {
                shared,
                level: self.level,
                stderr: self.stderr,
                also: self.also,
                excluded,
                flush_timeout: self.flush_timeout,
                thread: Mutex::new(Some(Shipper {
                    thread,
                    ended,
                    stop,
                })),
                _fabric: self.fabric,
            }),
        })
    }

    /// Builds the logger and installs it as the global logger of the `log` crate, with the
    /// global maximum level set to [`RemoteLogger::max_level`]; returns a handle to it.
    ///
    /// The installed logger lives as long as the process, and so does the fabric's
    /// connection; [`RemoteLogger::shutdown`] on the handle stops shipping.
    ///
    /// # Panics
    ///
    /// If a global logger is already installed, as `env_logger::init` does. Use
    /// [`build`](Self::build) and [`RemoteLogger::try_install`] to handle that case.
    pub fn install(self) -> Result<RemoteLogger> {
        let logger = self.build()?;
        if let Err(e) = logger.try_install() {
            panic!("RemoteLogger: cannot install the global logger: {e} (another logger is already installed)");
        }
        Ok(logger)
    }
}

/// The global logger slot: `log` takes a `&'static dyn Log`, and this one points it at the
/// installed [`RemoteLogger`].
static GLOBAL: OnceLock<RemoteLogger> = OnceLock::new();

struct GlobalLogger;

static GLOBAL_LOGGER: GlobalLogger = GlobalLogger;

impl Log for GlobalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        GLOBAL.get().is_some_and(|logger| logger.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if let Some(logger) = GLOBAL.get() {
            logger.log(record);
        }
    }

    fn flush(&self) {
        if let Some(logger) = GLOBAL.get() {
            logger.flush();
        }
    }
}

impl std::fmt::Debug for RemoteLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLogger")
            .field("level", &self.inner.level)
            .field("capacity", &self.inner.shared.capacity)
            .field("dropped", &self.dropped())
            .field("shipped", &self.shipped())
            .finish_non_exhaustive()
    }
}

impl RemoteLogger {
    /// A builder of a remote logger that ships as `fabric`'s participant (its service type
    /// and id) to the log exchange of its domain.
    pub fn builder(fabric: &Fabric) -> RemoteLoggerBuilder {
        RemoteLoggerBuilder {
            fabric: fabric.clone(),
            level: LevelFilter::Info,
            capacity: DEFAULT_CAPACITY,
            stderr: LevelFilter::Off,
            also: None,
            excluded: Vec::new(),
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
        }
    }

    /// Makes this logger the global logger of the `log` crate, and sets the global maximum
    /// level to [`max_level`](Self::max_level). Fails if a global logger is already
    /// installed (only one can be, for the life of the process).
    pub fn try_install(&self) -> std::result::Result<(), log::SetLoggerError> {
        log::set_logger(&GLOBAL_LOGGER)?;
        // Only the first successful `set_logger` gets here, so the slot is empty.
        let _ = GLOBAL.set(self.clone());
        log::set_max_level(self.max_level());
        Ok(())
    }

    /// The most detailed level any of the logger's outputs wants: the shipped level, the
    /// stderr level, and `Trace` when it wraps another logger (which then filters itself).
    /// Lower `log::set_max_level` yourself if the wrapped logger wants less.
    pub fn max_level(&self) -> LevelFilter {
        let inner = &self.inner;
        let wrapped = if inner.also.is_some() {
            LevelFilter::Trace
        } else {
            LevelFilter::Off
        };
        inner.level.max(inner.stderr).max(wrapped)
    }

    /// How many records were dropped: pushed out of a full queue, or lost when shipping
    /// stopped.
    pub fn dropped(&self) -> u64 {
        self.inner.shared.dropped.load(Ordering::Relaxed)
    }

    /// How many records were handed to the broker connection. Without publisher confirms,
    /// a record handed over just before the connection broke may still be lost (and is not
    /// counted as dropped).
    pub fn shipped(&self) -> u64 {
        self.inner.shared.shipped.load(Ordering::Relaxed)
    }

    /// How many records wait in the queue now.
    pub fn queued(&self) -> usize {
        self.inner.shared.state.lock().queue.len()
    }

    /// Why shipping stopped for good, if the fabric closed under the logger. A broken
    /// connection is not a failure: shipping resumes when the fabric reconnects.
    pub fn failure(&self) -> Option<Error> {
        match &self.inner.shared.state.lock().phase {
            Phase::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Waits up to `timeout` until every queued record has been handed to the broker
    /// connection; `true` if so, `false` if time ran out (the broker is slow, or the fabric
    /// is reconnecting: the records stay queued) or shipping has stopped.
    pub fn flush_within(&self, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        let mut state = shared.state.lock();
        shared.wait_drained(&mut state, Instant::now() + timeout)
    }

    /// Flushes (up to the flush timeout), then stops shipping: the thread ends and closes
    /// its channel, and later records are counted as dropped. Reports why shipping had
    /// stopped if the broker connection broke. Dropping the last clone does the same.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.shutdown()
    }

    /// Whether this record would be shipped.
    fn ships(&self, metadata: &Metadata<'_>) -> bool {
        let inner = &self.inner;
        metadata.level() <= inner.level
            && !inner
                .excluded
                .iter()
                .any(|prefix| is_within(metadata.target(), prefix))
    }

    fn enqueue(&self, entry: Entry) {
        let shared = &self.inner.shared;
        let mut state = shared.state.lock();
        if state.phase != Phase::Shipping {
            shared.drop_records(&mut state, 1);
            return;
        }
        let pushed_out = if state.queue.len() >= shared.capacity {
            shared.drop_records(&mut state, 1);
            state.queue.pop_front()
        } else {
            None
        };
        state.queue.push_back(entry);
        drop(state);
        shared.wake.notify_one();
        // Freed outside the lock.
        drop(pushed_out);
    }
}

/// Whether `target` is the module `prefix` or inside it.
fn is_within(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

impl Log for RemoteLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.ships(metadata)
            || metadata.level() <= self.inner.stderr
            || self
                .inner
                .also
                .as_ref()
                .is_some_and(|also| also.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        let Some(_inside) = InLog::enter() else {
            return;
        };
        let inner = &self.inner;
        if self.ships(record.metadata()) && may_ship_here() {
            self.enqueue(Entry::from_record(record));
        }
        if record.level() <= inner.stderr {
            // A closed or full stderr is not the application's problem.
            let _ = writeln!(
                std::io::stderr().lock(),
                "{:<5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
        if let Some(also) = &inner.also {
            if also.enabled(record.metadata()) {
                also.log(record);
            }
        }
    }

    /// Flushes the wrapped logger and stderr, then waits (up to the flush timeout) for the
    /// queue to drain.
    fn flush(&self) {
        if let Some(also) = &self.inner.also {
            also.flush();
        }
        let _ = std::io::stderr().flush();
        self.flush_within(self.inner.flush_timeout);
    }
}

impl Inner {
    fn shutdown(&self) -> Result<()> {
        let Some(shipper) = self.thread.lock().take() else {
            return self.outcome();
        };
        let left_over = {
            let shared = &self.shared;
            let mut state = shared.state.lock();
            shared.wait_drained(&mut state, Instant::now() + self.flush_timeout);
            if state.phase == Phase::Shipping {
                state.phase = Phase::Stopped;
            }
            let left = state.queue.len() as u64;
            shared.drop_records(&mut state, left);
            std::mem::take(&mut state.queue)
        };
        drop(left_over);
        // Wakes the thread if it waits for a connection; the phase, if it waits for records.
        drop(shipper.stop);
        self.shared.wake.notify_all();
        self.shared.drained.notify_all();
        // The thread may be stuck in a publish to a broker that does not answer: wait a
        // while, then leave it (it ends when the connection does).
        match shipper.ended.recv_timeout(JOIN_GRACE) {
            Err(RecvTimeoutError::Timeout) => {
                log::warn!(
                    "fabric: the log shipper thread did not end in {JOIN_GRACE:?}; left running"
                );
            }
            _ => {
                let _ = shipper.thread.join();
            }
        }
        self.outcome()
    }

    fn outcome(&self) -> Result<()> {
        match &self.shared.state.lock().phase {
            Phase::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Where the shipper publishes, and as whom.
struct Target {
    exchange: String,
    declaration: Declaration,
    publisher: Publisher,
}

/// One session of the shipper thread: declares the log exchange on this connection (a
/// restarted broker may have lost it), then publishes queued records until told to stop
/// (`Ok`) or the channel breaks (`Err`; `run_sessions` starts over on the next connection).
fn ship(session: &mut Session<'_>, target: &Target, shared: &Shared) -> Result<()> {
    let channel = session.channel;
    topology::declare(channel, std::slice::from_ref(&target.declaration))?;
    session.ready();
    if session.restart {
        log::info!("fabric: the log shipper resumes on the new connection");
    }
    while let Some((entry, dropped)) = next(shared) {
        let (body, properties) = wire::encode(&target.publisher, &entry, dropped);
        let published = channel.basic_publish(
            target.exchange.as_str(),
            Publish::with_properties(&body, "", properties),
        );
        match published {
            Ok(()) => {
                shared.shipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Not sent: the record waits for the next connection.
                keep(shared, entry, dropped);
                return Err(Error::broker("publish a log record", e));
            }
        }
    }
    Ok(())
}

/// Puts back a record whose publish failed at the head of the queue, with the drops it was
/// telling of. If the queue filled up meanwhile, the record is its oldest: it is dropped.
fn keep(shared: &Shared, entry: Entry, dropped: u64) {
    let mut state = shared.state.lock();
    state.busy = false;
    state.untold += dropped;
    if state.queue.len() >= shared.capacity {
        shared.drop_records(&mut state, 1);
        drop(state);
        drop(entry);
    } else {
        state.queue.push_front(entry);
    }
}

/// Shipping has ended for good (the fabric closed): the queued records are dropped, and
/// every later one will be.
fn give_up(shared: &Shared, error: Error) {
    let mut state = shared.state.lock();
    let lost = state.queue.len() as u64;
    shared.drop_records(&mut state, lost);
    let queue = std::mem::take(&mut state.queue);
    state.busy = false;
    if state.phase == Phase::Shipping {
        state.phase = Phase::Failed(error);
    }
    drop(state);
    shared.drained.notify_all();
    drop(queue);
}

/// The next record to publish and the number of drops to tell with it; `None` once the
/// logger is stopped. Tells flushers when the queue has drained.
fn next(shared: &Shared) -> Option<(Entry, u64)> {
    let mut state = shared.state.lock();
    state.busy = false;
    loop {
        if state.phase != Phase::Shipping {
            return None;
        }
        if let Some(entry) = state.queue.pop_front() {
            state.busy = true;
            let untold = std::mem::take(&mut state.untold);
            return Some((entry, untold));
        }
        shared.drained.notify_all();
        shared.wake.wait(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_excluded_by_module() {
        assert!(is_within("fabric_core", "fabric_core"));
        assert!(is_within("fabric_core::broker::consumer", "fabric_core"));
        assert!(!is_within("fabric_core_extra", "fabric_core"));
        assert!(!is_within("my_app", "fabric_core"));
    }

    #[test]
    fn a_nested_log_call_is_refused() {
        let outer = InLog::enter();
        assert!(outer.is_some());
        assert!(InLog::enter().is_none());
        drop(outer);
        assert!(InLog::enter().is_some());
    }
}
