//! The remote logger: a [`log::Log`] whose `log()` only queues in memory (`queue.rs`), and a
//! thread that ships the records to the broker (`shipper.rs`).
//!
//! `log()` runs on the application's threads and must never wait for the network, so all it
//! does is format the record and push it on a bounded queue under a short mutex. When the
//! queue is full the oldest record goes (the newest say most about the present), and the
//! count of records dropped rides on the next record shipped.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;

use super::loops::{self, InLog};
use super::queue::{RecordQueue, DEFAULT_CAPACITY};
use super::shipper::{Shipper, Target};
use super::wire::{self, Entry, Publisher};
use crate::broker::hold::Hold;
use crate::error::{Error, Result};
use crate::participant::Participant;

/// How long `flush` (and so closing) waits for the queue to drain by default.
const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing waits for the shipper thread to end after its queue is gone.
const JOIN_GRACE: Duration = Duration::from_secs(5);

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
/// stop when the last clone is dropped or at [`close`](Self::close). It keeps the
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
    queue: Arc<RecordQueue>,
    /// The most detailed level shipped.
    level: LevelFilter,
    /// The most detailed level written to stderr (`Off` for none).
    stderr: LevelFilter,
    also: Option<Box<dyn Log>>,
    excluded: Vec<String>,
    flush_timeout: Duration,
    shipper: Mutex<Option<Shipper>>,
    /// Keeps the connection open while the logger uses it.
    _hold: Hold,
}

/// Settings of a [`RemoteLogger`], from [`RemoteLogger::builder`].
#[must_use = "a builder does nothing until build() or install()"]
pub struct RemoteLoggerBuilder {
    participant: Participant,
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
    /// A builder of a remote logger that ships as `participant` (its service type and id)
    /// to the log exchange of its domain.
    pub(crate) fn new(participant: Participant) -> RemoteLoggerBuilder {
        RemoteLoggerBuilder {
            participant,
            level: LevelFilter::Info,
            capacity: DEFAULT_CAPACITY,
            stderr: LevelFilter::Off,
            also: None,
            excluded: Vec::new(),
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
        }
    }

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
        let participant = self.participant;
        let address = participant.address();
        let exchange = address.log_exchange();
        let target = Target {
            declaration: wire::exchange_declaration(&exchange),
            exchange,
            publisher: Publisher {
                service_type: address.service_type().to_owned(),
                service_id: address.service_id().to_owned(),
            },
        };
        let queue = Arc::new(RecordQueue::new(self.capacity));
        let shipper = Shipper::start(Arc::clone(participant.link()), target, Arc::clone(&queue))?;
        let mut excluded: Vec<String> = loops::FABRIC_TARGETS
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        excluded.extend(self.excluded);
        Ok(RemoteLogger {
            inner: Arc::new(Inner {
                queue,
                level: self.level,
                stderr: self.stderr,
                also: self.also,
                excluded,
                flush_timeout: self.flush_timeout,
                shipper: Mutex::new(Some(shipper)),
                _hold: participant.hold(),
            }),
        })
    }

    /// Builds the logger and installs it as the global logger of the `log` crate, with the
    /// global maximum level set to [`RemoteLogger::max_level`]; returns a handle to it.
    ///
    /// The installed logger lives as long as the process, and so does the fabric's
    /// connection; [`RemoteLogger::close`] on the handle stops shipping.
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

impl std::fmt::Debug for RemoteLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLogger")
            .field("level", &self.inner.level)
            .field("capacity", &self.inner.queue.capacity())
            .field("dropped", &self.dropped())
            .field("shipped", &self.shipped())
            .finish_non_exhaustive()
    }
}

impl RemoteLogger {
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
        self.inner.queue.dropped()
    }

    /// How many records were handed to the broker connection. Without publisher confirms,
    /// a record handed over just before the connection broke may still be lost (and is not
    /// counted as dropped).
    pub fn shipped(&self) -> u64 {
        self.inner.queue.shipped_count()
    }

    /// How many records wait in the queue now.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// Why shipping stopped for good, if the fabric closed under the logger. A broken
    /// connection is not a failure: shipping resumes when the fabric reconnects.
    pub fn failure(&self) -> Option<Error> {
        self.inner.queue.failure()
    }

    /// Waits up to `timeout` until every queued record has been handed to the broker
    /// connection; `true` if so, `false` if time ran out (the broker is slow, or the fabric
    /// is reconnecting: the records stay queued) or shipping has stopped.
    pub fn flush_within(&self, timeout: Duration) -> bool {
        self.inner.queue.flush_until(Instant::now() + timeout)
    }

    /// Flushes (up to the flush timeout), then stops shipping: the thread ends and closes
    /// its channel, and later records are counted as dropped. Reports why shipping had
    /// stopped if the fabric closed under it. Dropping the last clone does the same.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// The old name of [`close`](Self::close).
    #[deprecated(
        since = "0.2.0",
        note = "renamed `close`, as every handle that stops something"
    )]
    pub fn shutdown(&self) -> Result<()> {
        self.close()
    }

    /// Whether this record would be shipped.
    fn ships(&self, metadata: &Metadata<'_>) -> bool {
        let inner = &self.inner;
        metadata.level() <= inner.level
            && !inner
                .excluded
                .iter()
                .any(|prefix| loops::is_within(metadata.target(), prefix))
    }
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
        if self.ships(record.metadata()) && loops::may_ship_here() {
            inner.queue.push(Entry::from_record(record));
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
    fn close(&self) -> Result<()> {
        if let Some(shipper) = self.shipper.lock().take() {
            self.queue.stop(Instant::now() + self.flush_timeout);
            shipper.stop_within(JOIN_GRACE);
        }
        match self.queue.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
