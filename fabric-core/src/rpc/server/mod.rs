//! The server: an intake thread (`intake.rs`) that owns the channel calls come in on, and a
//! pool of worker threads (`worker.rs`) that run them.
//!
//! The intake consumes every method queue on one channel with a channel-wide prefetch of
//! `workers × prefetch` (by default one call per worker), so the instance never holds more
//! calls than it can run at once, and the broker keeps the rest where any instance of the
//! clique can take them. Workers take calls straight from the consumers' receivers, decode,
//! run the user's method and publish the reply; then the intake acks: an instance that dies
//! before the ack leaves the call to be redelivered to another consumer.
//!
//! The intake runs in sessions (`run_sessions`): when the connection breaks, it waits for
//! the next one, declares the service's exchange and queues again (they were auto-delete, so
//! they went with the connection or the broker), consumes again and hands the workers the new
//! receivers. The [`Server`] handle stays valid through it all.
//!
//! # What a worker does with a message that is not a good call
//!
//! Every message taken from a method queue is acked exactly once it has its outcome, so
//! nothing poisonous stays in the queue, and the worker goes on serving:
//!
//! | message | outcome |
//! | --- | --- |
//! | the method panics | error reply `panic` |
//! | the arguments do not fit the method, or the body does not decode | error reply `TypeError` (a Python caller raises `TypeError`) |
//! | a `content_type` fabric does not read | error reply `bad_request`, method not run |
//! | a `type` other than `call` (a missing one counts as a call) | error reply `bad_request`, method not run |
//! | no `reply_to` | method **not run**, acked, logged at warn |
//! | no `correlation_id` | run, answered without one (the caller cannot match it) |
//!
//! A call without `reply_to` is not run because nobody could ever learn its outcome: a
//! caller that forgot it would see a timeout either way, and a mistaken or stray message
//! (a reply published to the wrong queue, a test message) must not act. aio-pika's RPC,
//! which amqp-fabric uses, drops such calls the same way.
//!
//! A call is redelivered only when the instance that held it died or lost its connection
//! before the ack. Its method sees [`CallContext::redelivered`](crate::CallContext) set. A
//! call that crashes every process that takes it (an abort, a stack overflow) is not
//! counted or quarantined: RabbitMQ's classic queues keep no delivery count. What bounds the
//! loop is the call's expiration, the caller's timeout: a requeued call keeps it, and once
//! it has passed the broker dead-letters the call to its caller as a timeout instead of
//! delivering it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::ExchangeType;
use crossbeam_channel::{bounded, unbounded};

mod acks;
mod intake;
mod readiness;
mod worker;

use super::dispatch::Dispatch;
use super::protocol;
use crate::address::ServiceAddress;
use crate::broker::hold::Hold;
use crate::broker::link::Link;
use crate::broker::topology::{self, Declaration};
use crate::error::{Error, Result};
use crate::participant::Participant;
use crate::registry::{ServerList, ServerLoad};
use crate::thread::StoppableThread;
use intake::Intake;
use readiness::Readiness;
use worker::Worker;

/// Default number of worker threads: how many calls an instance runs at once.
const DEFAULT_WORKERS: usize = 32;
/// Default calls an instance holds per worker: 1, so every call it holds is running.
const DEFAULT_PREFETCH: u16 = 1;
/// How long the method queues of a durable server outlive their last consumer by default.
const DEFAULT_DURABLE_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// What the intake and the workers of a server share.
struct Shared {
    address: ServiceAddress,
    /// Method names, `health_check` last; a consumer's index is its method's index.
    methods: Vec<&'static str>,
    /// The method queues, in the same order.
    queues: Vec<String>,
    /// What `serve` declared, declared again by the intake after a reconnection.
    declarations: Vec<Declaration>,
    /// Whether the intake's prefetch covers its channel (classic queues) or each consumer
    /// (quorum queues, which refuse a channel-wide one).
    channel_wide_prefetch: bool,
    load: Arc<ServerLoad>,
    readiness: Arc<Readiness>,
    link: Arc<Link>,
}

/// Configures a server before it starts; made by the generated `{Trait}Server::new`, started
/// by [`serve`](Self::serve).
#[derive(Debug)]
#[must_use = "a ServerBuilder serves nothing until serve() is called"]
pub struct ServerBuilder<D: Dispatch> {
    dispatcher: D,
    workers: usize,
    prefetch: u16,
    queues: QueueMode,
}

/// How a server's method queues are kept: amqp-fabric's auto-delete classic queues, or
/// durable quorum queues ([`ServerBuilder::durable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueMode {
    /// Classic, auto-delete: gone with the last consumer, or with the node they live on.
    Classic,
    /// Quorum queues, removed by the broker after this long without a consumer.
    Durable { expiry: Duration },
}

impl<D: Dispatch> ServerBuilder<D> {
    /// A builder for serving `dispatcher`, with 32 workers and a prefetch of 1.
    pub fn new(dispatcher: D) -> ServerBuilder<D> {
        ServerBuilder {
            dispatcher,
            workers: DEFAULT_WORKERS,
            prefetch: DEFAULT_PREFETCH,
            queues: QueueMode::Classic,
        }
    }

    /// The service this builder will serve: call [`Dispatch::dispatch`] on it to test a
    /// service's encoding and logic without a broker.
    pub fn dispatcher(&self) -> &D {
        &self.dispatcher
    }

    /// How many calls run at once: the number of worker threads (at least 1, at most
    /// 65535). The default, 32, suits handlers that wait on I/O; an idle worker costs a
    /// thread and its stack, no broker resources.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.clamp(1, usize::from(u16::MAX));
        self
    }

    /// How many calls the instance holds per worker, unacknowledged (at least 1): it holds
    /// at most `workers × prefetch` calls. The default, 1, means every call the instance
    /// holds is running, so a call never waits here behind slow ones while another instance
    /// of the clique could run it, and an instance that dies takes back at most `workers`
    /// calls to the broker. More lets the broker send ahead of the workers, at the cost of
    /// calls waiting in this instance for a free worker.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Durable RPC: the method queues are **quorum queues**, replicated on a majority of a
    /// cluster's nodes, so that calls waiting in them survive the loss of any one node of
    /// three; they are removed by the broker 30 minutes after their last consumer went
    /// ([`durable_expiry`](Self::durable_expiry)) instead of at once.
    ///
    /// Callers see no difference: the queues have amqp-fabric's names and dead-letter
    /// exchange, so any caller (a Python one too) calls as before, and an expired call still
    /// comes back as a timeout. But RabbitMQ refuses to declare a queue again with another
    /// type, so every instance of the clique must be durable (an amqp-fabric Python server
    /// cannot join it), and a service switching mode must wait until its old queues are gone
    /// (or delete them). Each call costs more: the broker replicates it and writes it to
    /// disk before delivering it (see BENCHMARKS.md). Quorum queues refuse a channel-wide
    /// prefetch, so the calls an instance holds (`workers × prefetch`) are counted per
    /// method queue: with several methods, an instance may hold more calls than it has
    /// workers, and a call may wait in it behind another.
    pub fn durable(mut self) -> Self {
        if self.queues == QueueMode::Classic {
            self.queues = QueueMode::Durable {
                expiry: DEFAULT_DURABLE_EXPIRY,
            };
        }
        self
    }

    /// How long the method queues of a [`durable`](Self::durable) server stay after their
    /// last consumer (and last declaration) before the broker removes them, with any calls
    /// still in them (at least one second; implies `durable`). Default 30 minutes: long
    /// enough for a restart or a failover, short enough that a service gone for good leaves
    /// nothing behind. Calls are not kept past their own expiration either way.
    pub fn durable_expiry(mut self, expiry: Duration) -> Self {
        self.queues = QueueMode::Durable {
            expiry: expiry.max(Duration::from_secs(1)),
        };
        self
    }

    /// Declares the service's exchange and method queues at the participant's address and
    /// starts the workers (see [`serve`](Self::serve)); the server is listed in `servers`
    /// while it runs.
    pub(crate) fn start(self, participant: &Participant, servers: &ServerList) -> Result<Server> {
        let address = participant.address().clone();
        let link = Arc::clone(participant.link());
        let methods: Vec<&'static str> = D::METHODS
            .iter()
            .copied()
            .chain([protocol::HEALTH_CHECK])
            .collect();
        let mut queues = Vec::with_capacity(methods.len());
        for method in &methods {
            queues.push(address.checked_method_queue(method)?);
        }
        let declarations = server_topology(&address, &methods, self.queues);
        topology::declare_anew(&link, &declarations)?;

        let load = Arc::new(ServerLoad::new(
            D::SERVICE,
            methods.clone(),
            self.workers,
            D::contract(),
        ));
        let readiness = Arc::new(Readiness::new(1));
        let shared = Arc::new(Shared {
            address: address.clone(),
            methods,
            queues,
            declarations,
            channel_wide_prefetch: self.queues == QueueMode::Classic,
            load: Arc::clone(&load),
            readiness: Arc::clone(&readiness),
            link: Arc::clone(&link),
        });
        let dispatcher = Arc::new(self.dispatcher);
        // The workers first, waiting for their first shift; each has its own stop channel
        // and shift channel, so that they do not contend for one channel's waiters.
        let mut workers = Vec::with_capacity(self.workers);
        let mut shifts = Vec::with_capacity(self.workers);
        for index in 0..self.workers {
            let (shift_tx, shift_rx) = unbounded();
            shifts.push(shift_tx);
            let worker = Worker {
                dispatcher: Arc::clone(&dispatcher),
                shared: Arc::clone(&shared),
            };
            let thread = StoppableThread::spawn(&format!("fabric-worker-{index}"), move |stop| {
                worker.run(&shift_rx, &stop)
            });
            // On an early return, dropping `workers` stops the workers already started.
            workers.push(thread?);
        }
        let held = u16::try_from(self.workers.saturating_mul(usize::from(self.prefetch)))
            .unwrap_or(u16::MAX);
        let intake = Intake {
            shared,
            shifts,
            held,
        };
        let (ready_tx, ready_rx) = bounded(1);
        let intake =
            StoppableThread::spawn("fabric-intake", move |stop| intake.run(&stop, ready_tx))?;
        let threads = Workers { intake, workers };
        // On failure, dropping `threads` stops them all.
        ready_rx.recv().unwrap_or(Err(Error::Closed))?;
        servers.add(&load);
        log::info!(
            "fabric: serving {} as {} with {} workers",
            D::SERVICE,
            address,
            self.workers
        );
        Ok(Server {
            address,
            workers: Arc::new(threads),
            load,
            readiness,
            servers: Arc::clone(servers),
            link,
            _hold: participant.hold(),
        })
    }
}

/// The threads of a running server: its intake and its workers.
#[derive(Debug)]
pub(crate) struct Workers {
    intake: StoppableThread<Result<()>>,
    workers: Vec<StoppableThread<()>>,
}

impl Workers {
    /// Stops the intake, which stops taking calls and waits for the workers to answer the
    /// calls in hand; then stops the workers. The error the intake ended with, if any.
    pub(crate) fn stop(&self) -> Result<()> {
        self.intake.signal();
        self.join()
    }

    /// Waits for the intake to end (told to stop, or the fabric closed), then stops and
    /// joins the workers; the error the intake ended with, if any.
    fn join(&self) -> Result<()> {
        // `None`: joined before, or panicked (then the next wait says nothing new).
        let outcome = self.intake.join().unwrap_or(Ok(()));
        for worker in &self.workers {
            worker.signal();
        }
        for worker in &self.workers {
            let _ = worker.join();
        }
        outcome
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Stopped in order (intake first) even when the server never got going.
        let _ = self.stop();
    }
}

/// A running server. Dropping it closes it gracefully, as [`close`](Self::close).
///
/// It survives the loss of its connection: its workers consume again once the fabric has
/// reconnected (see [`is_serving`](Self::is_serving) and
/// [`wait_serving`](Self::wait_serving)).
#[must_use = "dropping a Server stops it at once; keep it, or wait() on it"]
pub struct Server {
    address: ServiceAddress,
    workers: Arc<Workers>,
    load: Arc<ServerLoad>,
    readiness: Arc<Readiness>,
    /// The fabric's list of servers, which the keep-alives announce.
    servers: ServerList,
    link: Arc<Link>,
    /// Keeps the connection open while the workers use it.
    _hold: Hold,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address.fqn())
            .field("workers", &self.load.workers)
            .field("calls_in_flight", &self.calls_in_flight())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the server answers at.
    pub fn address(&self) -> &ServiceAddress {
        &self.address
    }

    /// Blocks until the server stops: after [`close`](Self::close) from another thread
    /// (then `Ok`), or when its fabric is closed (then [`Error::Closed`]). A lost connection
    /// does not end it: the server resumes once the fabric reconnects.
    pub fn wait(&self) -> Result<()> {
        self.workers.join()
    }

    /// Stops taking calls, finishes and answers the calls in hand, then closes the workers'
    /// channels. Calls still queued go to the other instances of the clique, if any. Later
    /// calls return `Ok`.
    pub fn close(&self) -> Result<()> {
        let outcome = self.workers.stop();
        self.servers.remove(&self.load);
        outcome
    }

    /// The old name of [`close`](Self::close).
    #[deprecated(
        since = "0.2.0",
        note = "renamed `close`, as every handle that stops something"
    )]
    pub fn shutdown(&self) -> Result<()> {
        self.close()
    }

    /// Calls being run right now.
    pub fn calls_in_flight(&self) -> usize {
        self.load.in_flight()
    }

    /// Whether the server consumes on the fabric's current connection: `false` while the
    /// connection is down and until it has declared the queues again and consumes after a
    /// reconnection, and after [`close`](Self::close).
    pub fn is_serving(&self) -> bool {
        self.readiness.is_serving(&self.link)
    }

    /// Blocks until [`is_serving`](Self::is_serving), for at most `timeout`; returns whether
    /// it is. After a reconnection, calls sent before it is true may fail with
    /// [`Error::NoSuchService`] (the queues are not declared again yet).
    ///
    /// ```no_run
    /// # fn demo(fabric: &fabric_core::Fabric, server: &fabric_core::Server) -> fabric_core::Result<()> {
    /// use std::time::Duration;
    ///
    /// fabric.wait_connected(Duration::from_secs(60))?;
    /// assert!(server.wait_serving(Duration::from_secs(10)), "the workers did not resume");
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_serving(&self, timeout: Duration) -> bool {
        self.readiness
            .wait_serving(&self.link, Instant::now() + timeout)
    }

    /// The workers, for the fabric to stop them when it closes.
    pub(crate) fn workers(&self) -> &Arc<Workers> {
        &self.workers
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            log::warn!("fabric: server {} stopped with an error: {e}", self.address);
        }
    }
}

/// The exchange, one queue per method and their bindings, as amqp-fabric declares them, or
/// with durable quorum queues of the same names.
fn server_topology(
    address: &ServiceAddress,
    methods: &[&str],
    mode: QueueMode,
) -> Vec<Declaration> {
    let exchange = address.exchange();
    let mut declarations = vec![Declaration::Exchange {
        name: exchange.clone(),
        kind: ExchangeType::Direct,
        durable: false,
        auto_delete: true,
    }];
    for method in methods {
        let queue = address.method_queue(method);
        let mut arguments = topology::string_table([("x-dead-letter-exchange", topology::RPC_DLX)]);
        declarations.push(match mode {
            QueueMode::Classic => Declaration::Queue {
                name: queue.clone(),
                durable: false,
                auto_delete: true,
                exclusive: false,
                arguments,
            },
            QueueMode::Durable { expiry } => {
                let millis = u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX);
                arguments.insert("x-expires".to_owned(), topology::number_argument(millis));
                topology::quorum_queue(queue.clone(), arguments)
            }
        });
        declarations.push(Declaration::Binding {
            queue: queue.clone(),
            exchange: exchange.clone(),
            routing_key: queue,
            arguments: Default::default(),
        });
    }
    declarations
}
