//! The server: a pool of worker threads, each owning one AMQP channel at a time.
//!
//! Every worker consumes every method queue on its own channel with a channel-wide prefetch,
//! so the broker spreads calls over the workers and a worker never holds more calls than it
//! may run. A worker decodes, runs the user's method, publishes the reply and then acks: a
//! worker that dies before the ack leaves the call to be redelivered to another consumer.
//!
//! Each worker runs in sessions ([`run_sessions`]): when the connection breaks, it waits for
//! the next one, declares the service's exchange and queues again (they were auto-delete, so
//! they went with the connection or the broker) and consumes again. The [`Server`] handle
//! stays valid through it all.
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

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use amiquip::{
    Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery, ExchangeType, Publish,
};
use crossbeam_channel::{bounded, Receiver, Select, Sender};
use parking_lot::{Condvar, Mutex};

use super::context::{CallContext, CurrentCall};
use super::dispatch::{Dispatch, DispatchError};
use super::protocol::{self, error_kind};
use super::reply::Reply;
use crate::broker::link::{run_sessions, ConnectionState, Link, Session};
use crate::broker::topology::{self, Declaration};
use crate::{Codec, Error, Fabric, Result, ServiceAddress, JSON_CONTENT_TYPE};

/// Default number of worker threads.
const DEFAULT_WORKERS: usize = 8;
/// Default calls a worker may hold unacknowledged: one running, one on its way.
const DEFAULT_PREFETCH: u16 = 1;

/// What a running server tells the registry: announced in keep-alives.
#[derive(Debug)]
pub(crate) struct ServerLoad {
    /// The service trait's name.
    pub service: &'static str,
    /// The methods served, `health_check` included.
    pub methods: Vec<&'static str>,
    /// The number of workers.
    pub workers: usize,
    /// Calls being run right now.
    pub in_flight: AtomicUsize,
}

/// Configures a server before it starts; made by the generated `{Trait}Server::new`.
#[derive(Debug)]
pub struct ServerBuilder<D: Dispatch> {
    dispatcher: D,
    workers: usize,
    prefetch: u16,
}

impl<D: Dispatch> ServerBuilder<D> {
    /// A builder for serving `dispatcher`, with 8 workers and a prefetch of 1.
    pub fn new(dispatcher: D) -> ServerBuilder<D> {
        ServerBuilder {
            dispatcher,
            workers: DEFAULT_WORKERS,
            prefetch: DEFAULT_PREFETCH,
        }
    }

    /// The service this builder will serve: call [`Dispatch::dispatch`] on it to test a
    /// service's encoding and logic without a broker.
    pub fn dispatcher(&self) -> &D {
        &self.dispatcher
    }

    /// How many calls run at once: the number of worker threads (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// How many calls each worker may hold unacknowledged (at least 1). The default, 1, keeps
    /// every waiting call in the broker where any instance of a clique can take it; more
    /// hides the broker round trip between calls at the cost of calls queued behind a slow one.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Declares the service's exchange and method queues at the fabric's own address and
    /// starts the workers. Returns once every worker consumes; fails if any of that fails
    /// (a refused declaration, the connection down), and then no worker is left running.
    ///
    /// From then on the server outlives connection losses: its workers consume again, after
    /// declaring the queues again, each time the fabric reconnects.
    pub fn serve(self, fabric: &Fabric) -> Result<Server> {
        let address = fabric.address().clone();
        let methods: Vec<&'static str> = D::METHODS
            .iter()
            .copied()
            .chain([protocol::HEALTH_CHECK])
            .collect();
        let mut queues = Vec::with_capacity(methods.len());
        for method in &methods {
            queues.push(address.checked_method_queue(method)?);
        }
        let declarations = server_topology(&address, &methods);
        let setup = fabric.open_channel()?;
        topology::declare(&setup, &declarations)?;
        let _ = setup.close();

        let dispatcher = Arc::new(self.dispatcher);
        let load = Arc::new(ServerLoad {
            service: D::SERVICE,
            methods: methods.clone(),
            workers: self.workers,
            in_flight: AtomicUsize::new(0),
        });
        let readiness = Arc::new(Readiness {
            consuming: Mutex::new(vec![0; self.workers]),
            changed: Condvar::new(),
        });
        let shared = Arc::new(WorkerShared {
            address: address.clone(),
            methods,
            queues,
            declarations,
            load: Arc::clone(&load),
            readiness: Arc::clone(&readiness),
            link: Arc::clone(fabric.link()),
        });
        // Built first so that an early return stops the workers already started.
        let server = Server {
            address: address.clone(),
            stop: Mutex::new(Vec::with_capacity(self.workers)),
            workers: Mutex::new(Vec::with_capacity(self.workers)),
            load: Arc::clone(&load),
            readiness,
            fabric: fabric.clone(),
        };
        for index in 0..self.workers {
            let (ready_tx, ready_rx) = bounded(1);
            let worker = Worker {
                index,
                dispatcher: Arc::clone(&dispatcher),
                shared: Arc::clone(&shared),
                prefetch: self.prefetch,
            };
            // A stop channel per worker: a worker waits on it with every call, and a
            // channel shared by all workers would make them contend for its waker list.
            let (stop_tx, stop) = bounded::<()>(0);
            server.stop.lock().push(stop_tx);
            let handle = std::thread::Builder::new()
                .name(format!("fabric-worker-{index}"))
                .spawn(move || {
                    let what = format!("worker {index} of {}", worker.shared.address);
                    let link = Arc::clone(&worker.shared.link);
                    run_sessions(&link, &what, &stop, ready_tx, |session| {
                        worker.session(session, &stop)
                    })
                })
                .map_err(|e| Error::Broker {
                    operation: "start a worker thread".to_owned(),
                    reason: e.to_string(),
                })?;
            server.workers.lock().push(handle);
            ready_rx.recv().unwrap_or(Err(Error::Closed))?;
        }
        fabric.register_server(&load);
        log::info!(
            "fabric: serving {} as {} with {} workers",
            D::SERVICE,
            address,
            self.workers
        );
        Ok(server)
    }
}

/// A running server. Dropping it shuts it down gracefully, as [`shutdown`](Self::shutdown).
///
/// It survives the loss of its connection: its workers consume again once the fabric has
/// reconnected (see [`is_serving`](Self::is_serving) and
/// [`wait_serving`](Self::wait_serving)).
#[derive(Debug)]
pub struct Server {
    address: ServiceAddress,
    /// One per worker; dropping them tells the workers to stop.
    stop: Mutex<Vec<Sender<()>>>,
    workers: Mutex<Vec<JoinHandle<Result<()>>>>,
    load: Arc<ServerLoad>,
    readiness: Arc<Readiness>,
    /// Keeps the connection open while the workers use it.
    fabric: Fabric,
}

impl Server {
    /// The address the server answers at.
    pub fn address(&self) -> &ServiceAddress {
        &self.address
    }

    /// Blocks until the server stops: after [`shutdown`](Self::shutdown) from another thread
    /// (then `Ok`), or when its fabric is closed (then [`Error::Closed`]). A lost connection
    /// does not end it: the server resumes once the fabric reconnects.
    pub fn wait(&self) -> Result<()> {
        let workers = std::mem::take(&mut *self.workers.lock());
        let mut outcome = Ok(());
        for worker in workers {
            let result = worker.join().unwrap_or(Err(Error::Closed));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }

    /// Stops taking calls, finishes and answers the calls in hand, then closes the workers'
    /// channels. Calls still queued go to the other instances of the clique, if any.
    pub fn shutdown(&self) -> Result<()> {
        self.stop.lock().clear();
        let outcome = self.wait();
        self.fabric.unregister_server(&self.load);
        outcome
    }

    /// Calls being run right now.
    pub fn calls_in_flight(&self) -> usize {
        self.load.in_flight.load(Ordering::Relaxed)
    }

    /// Whether every worker consumes on the fabric's current connection: `false` while the
    /// connection is down and until the workers have declared the queues again and consume
    /// after a reconnection, and after [`shutdown`](Self::shutdown).
    pub fn is_serving(&self) -> bool {
        self.readiness.all_on(self.fabric.link().generation()) && self.is_connected()
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
        let deadline = Instant::now() + timeout;
        let link = self.fabric.link();
        // Checked under the readiness lock, so a worker's change is never missed.
        let mut consuming = self.readiness.consuming.lock();
        loop {
            let generation = link.generation();
            if consuming.iter().all(|g| *g == generation) && self.is_connected() {
                return true;
            }
            if link.state() == ConnectionState::Closed
                || self
                    .readiness
                    .changed
                    .wait_until(&mut consuming, deadline)
                    .timed_out()
            {
                let generation = link.generation();
                return consuming.iter().all(|g| *g == generation) && self.is_connected();
            }
        }
    }

    fn is_connected(&self) -> bool {
        matches!(
            self.fabric.link().state(),
            ConnectionState::Connected { .. } | ConnectionState::Blocked { .. }
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::warn!("fabric: server {} stopped with an error: {e}", self.address);
        }
    }
}

/// The exchange, one queue per method and their bindings, as amqp-fabric declares them.
fn server_topology(address: &ServiceAddress, methods: &[&str]) -> Vec<Declaration> {
    let exchange = address.exchange();
    let mut declarations = vec![Declaration::Exchange {
        name: exchange.clone(),
        kind: ExchangeType::Direct,
        durable: false,
        auto_delete: true,
    }];
    for method in methods {
        let queue = address.method_queue(method);
        declarations.push(Declaration::Queue {
            name: queue.clone(),
            durable: false,
            auto_delete: true,
            exclusive: false,
            arguments: topology::string_table([("x-dead-letter-exchange", topology::RPC_DLX)]),
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

/// Which workers consume, and on which connection: one generation per worker, 0 when it
/// does not consume. Changes are signalled on `changed`.
#[derive(Debug)]
struct Readiness {
    consuming: Mutex<Vec<u64>>,
    changed: Condvar,
}

impl Readiness {
    fn set(&self, worker: usize, generation: u64) {
        self.consuming.lock()[worker] = generation;
        self.changed.notify_all();
    }

    fn all_on(&self, generation: u64) -> bool {
        self.consuming.lock().iter().all(|g| *g == generation)
    }
}

/// Marks a worker as consuming on a generation while it lives.
struct Consuming<'a> {
    readiness: &'a Readiness,
    worker: usize,
}

impl Drop for Consuming<'_> {
    fn drop(&mut self) {
        self.readiness.set(self.worker, 0);
    }
}

/// What all workers of a server share.
struct WorkerShared {
    address: ServiceAddress,
    /// Method names, `health_check` last; a consumer's index is its method's index.
    methods: Vec<&'static str>,
    /// The method queues, in the same order.
    queues: Vec<String>,
    /// What `serve` declared, declared again by each worker after a reconnection.
    declarations: Vec<Declaration>,
    load: Arc<ServerLoad>,
    readiness: Arc<Readiness>,
    link: Arc<Link>,
}

struct Worker<D> {
    index: usize,
    dispatcher: Arc<D>,
    shared: Arc<WorkerShared>,
    prefetch: u16,
}

impl<D: Dispatch> Worker<D> {
    /// One session: consumes every method queue on the session's channel until told to stop
    /// (`Ok`, after draining) or the channel fails (`Err`, and `run_sessions` starts over).
    fn session(&self, session: &mut Session<'_>, stop: &Receiver<()>) -> Result<()> {
        let channel = session.channel;
        let generation = session.generation;
        if session.restart {
            // Auto-delete: the exchange and queues went with the last connection (or broker).
            topology::declare(channel, &self.shared.declarations)?;
        }
        // Global: the limit covers the whole channel, not each of its consumers.
        channel
            .qos(0, self.prefetch, true)
            .map_err(|e| Error::broker("set the prefetch", e))?;
        let consumers = self.consume(channel)?;
        // Marked before `ready`, so a server is serving as soon as `serve` returns.
        self.shared.readiness.set(self.index, generation);
        let _consuming = Consuming {
            readiness: &self.shared.readiness,
            worker: self.index,
        };
        session.ready();
        let outcome = self.serve(channel, &consumers, stop);
        if let Err(e) = &outcome {
            log::warn!(
                "fabric: worker {} of {} stops consuming: {e}",
                self.index,
                self.shared.address
            );
        }
        self.drain(channel, &consumers);
        outcome
    }

    /// Consumes every method queue. On failure the consumers already made are cancelled
    /// (not merely dropped: the channel may still live).
    fn consume<'c>(&self, channel: &'c Channel) -> Result<Vec<Consumer<'c>>> {
        let mut consumers = Vec::with_capacity(self.shared.queues.len());
        for queue in &self.shared.queues {
            match channel.basic_consume(queue.as_str(), ConsumerOptions::default()) {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    self.drain(channel, &consumers);
                    return Err(Error::broker(format!("consume {queue}"), e));
                }
            }
        }
        Ok(consumers)
    }

    /// Takes calls until told to stop (`Ok`) or a consumer or the channel fails (`Err`).
    fn serve(
        &self,
        channel: &Channel,
        consumers: &[Consumer<'_>],
        stop: &Receiver<()>,
    ) -> Result<()> {
        let mut select = Select::new();
        for consumer in consumers {
            select.recv(consumer.receiver());
        }
        let stop_index = select.recv(stop);
        loop {
            let operation = select.select();
            let index = operation.index();
            if index == stop_index {
                let _ = operation.recv(stop);
                return Ok(());
            }
            match operation.recv(consumers[index].receiver()) {
                Ok(ConsumerMessage::Delivery(delivery)) => {
                    self.answer(channel, index, delivery)?;
                }
                Ok(ConsumerMessage::ServerCancelled) => {
                    return Err(Error::Broker {
                        operation: format!("consume {}", self.shared.queues[index]),
                        reason: "the broker cancelled the consumer (was the queue deleted?)"
                            .to_owned(),
                    })
                }
                Ok(other) => {
                    return Err(Error::ConnectionLost {
                        reason: format!("{other:?}"),
                    })
                }
                Err(_) => {
                    return Err(Error::ConnectionLost {
                        reason: "the consumer's stream ended".to_owned(),
                    })
                }
            }
        }
    }

    /// Cancels every consumer and answers the calls the broker had already sent, so none is
    /// left unanswered; then nothing more can arrive and the consumers can be dropped.
    ///
    /// A consumer whose cancel fails is on a dead channel or connection: its calls cannot be
    /// acked any more and the broker gives them to another consumer, so they are not run
    /// here (that would run them twice), and dropping it is safe (no I/O thread sends to it).
    fn drain(&self, channel: &Channel, consumers: &[Consumer<'_>]) {
        let mut failed = false;
        for (index, consumer) in consumers.iter().enumerate() {
            if failed || consumer.cancel().is_err() {
                failed = true;
                continue;
            }
            for message in consumer.receiver().iter() {
                match message {
                    ConsumerMessage::Delivery(delivery) if !failed => {
                        if let Err(e) = self.answer(channel, index, delivery) {
                            log::warn!(
                                "fabric: worker {} of {} could not finish a call: {e}",
                                self.index,
                                self.shared.address
                            );
                            failed = true;
                        }
                    }
                    ConsumerMessage::Delivery(_) => {}
                    _ => break,
                }
            }
        }
    }

    /// Runs one call, publishes its reply, then acks it. `Err` only when the reply or the ack
    /// could not be sent (the channel or connection died): the call is then not acked, and
    /// the broker redelivers it.
    fn answer(&self, channel: &Channel, index: usize, delivery: Delivery) -> Result<()> {
        let queue = &self.shared.queues[index];
        let properties = &delivery.properties;
        let correlation_id = properties.correlation_id().clone();
        let Some(reply_to) = properties.reply_to().as_deref() else {
            log::warn!(
                "fabric: {queue} got a message without reply_to (correlation id \
                 {correlation_id:?}, type {:?}); not run, as nobody could get its outcome; \
                 dropped",
                properties.type_()
            );
            return ack(channel, queue, correlation_id, delivery);
        };
        let answer = match properties.type_().as_deref() {
            Some(kind) if kind != protocol::TYPE_CALL => {
                log::warn!(
                    "fabric: {queue} got a message of type {kind:?} (correlation id \
                     {correlation_id:?}); not a call, not run"
                );
                Answer::failure(
                    error_kind::BAD_REQUEST,
                    format!("a message of type {kind:?} is not a call (type \"call\")"),
                )
            }
            _ => self.run_call(index, &delivery),
        };
        let reply = Publish::with_properties(
            &answer.body,
            reply_to,
            protocol::reply_properties(correlation_id.clone(), answer.kind, answer.content_type),
        );
        if let Err(e) = channel.basic_publish("", reply) {
            let error = Error::broker("publish a reply", e);
            log::warn!(
                "fabric: the reply to {queue} call {correlation_id:?} was not sent ({error}); \
                 the call is not acked, so the broker will deliver it again"
            );
            return Err(error);
        }
        ack(channel, queue, correlation_id, delivery)
    }

    /// Runs one call with its [`CallContext`] current.
    fn run_call(&self, index: usize, delivery: &Delivery) -> Answer {
        let method = self.shared.methods[index];
        let properties = &delivery.properties;
        let content_type = properties.content_type().as_deref();
        let Some(codec) = Codec::from_content_type(content_type) else {
            return Answer::failure(
                error_kind::BAD_REQUEST,
                format!(
                    "content type {content_type:?} is not one fabric reads (application/json or {})",
                    crate::BINCODE_CONTENT_TYPE
                ),
            );
        };
        let context = CallContext {
            method: method.to_owned(),
            queue: self.shared.queues[index].clone(),
            correlation_id: properties.correlation_id().clone(),
            reply_to: properties.reply_to().clone(),
            redelivered: delivery.redelivered,
            codec,
        };
        self.shared.load.in_flight.fetch_add(1, Ordering::Relaxed);
        // Restores the previous context when dropped, also if `execute` unwinds.
        let _call = CurrentCall::enter(context);
        let answer = self.execute(method, codec, &delivery.body);
        self.shared.load.in_flight.fetch_sub(1, Ordering::Relaxed);
        answer
    }

    /// Decodes, runs and encodes one call.
    fn execute(&self, method: &str, codec: Codec, body: &[u8]) -> Answer {
        let outcome = if method == protocol::HEALTH_CHECK {
            Ok(Reply::value(codec, &true))
        } else {
            catch_unwind(AssertUnwindSafe(|| {
                self.dispatcher.dispatch(method, codec, body)
            }))
        };
        match outcome {
            Ok(Ok(reply)) => Answer::reply(reply),
            Ok(Err(DispatchError::UnknownMethod)) => Answer::failure(
                error_kind::UNKNOWN_METHOD,
                format!("{} has no method `{method}`", D::SERVICE),
            ),
            Ok(Err(DispatchError::BadArguments(message))) => {
                Answer::failure(error_kind::BAD_ARGUMENTS, message)
            }
            Ok(Err(DispatchError::Unencodable(message))) => {
                log::error!(
                    "fabric: {}::{method} answered what cannot be encoded: {message}",
                    D::SERVICE
                );
                Answer::failure(
                    error_kind::INTERNAL,
                    format!("the outcome of `{method}` cannot be encoded: {message}"),
                )
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
                log::error!("fabric: {}::{method} panicked: {message}", D::SERVICE);
                Answer::failure(
                    error_kind::PANIC,
                    format!("the handler panicked: {message}"),
                )
            }
        }
    }
}

/// The reply to one call, as it goes on the wire.
struct Answer {
    /// The message's `type`: `result` or `error`.
    kind: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Answer {
    /// What the method answered: its value, or its own error.
    fn reply(reply: Reply) -> Answer {
        Answer {
            kind: if reply.is_error() {
                protocol::TYPE_ERROR
            } else {
                protocol::TYPE_RESULT
            },
            content_type: reply.codec().content_type(),
            body: reply.into_body(),
        }
    }

    /// A failure of the server's own, in JSON as amqp-fabric writes error replies.
    fn failure(kind: &str, message: String) -> Answer {
        Answer {
            kind: protocol::TYPE_ERROR,
            content_type: JSON_CONTENT_TYPE,
            body: protocol::encode_error(kind, &message),
        }
    }
}

/// Acks a call; a failure means the channel or connection died, and the broker will deliver
/// the call again.
fn ack(
    channel: &Channel,
    queue: &str,
    correlation_id: Option<String>,
    delivery: Delivery,
) -> Result<()> {
    delivery.ack(channel).map_err(|e| {
        let error = Error::broker("ack a call", e);
        log::warn!(
            "fabric: the ack of {queue} call {correlation_id:?} failed ({error}); the broker \
             will deliver it again"
        );
        error
    })
}
