//! The server: a pool of worker threads, each owning one AMQP channel.
//!
//! Every worker consumes every method queue on its own channel with a channel-wide prefetch,
//! so the broker spreads calls over the workers and a worker never holds more calls than it
//! may run. A worker decodes, runs the user's method, publishes the reply and then acks: a
//! worker that dies before the ack leaves the call to be redelivered to another consumer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use amiquip::{
    Channel, Consumer, ConsumerMessage, ConsumerOptions, Delivery, ExchangeType, Publish,
};
use crossbeam_channel::{bounded, Receiver, Select, Sender};
use parking_lot::Mutex;

use super::dispatch::Dispatch;
use super::protocol::{self, error_kind};
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
    /// starts the workers. Returns once every worker consumes.
    pub fn serve(self, fabric: &Fabric) -> Result<Server> {
        let address = fabric.address().clone();
        let methods: Vec<&'static str> = D::METHODS
            .iter()
            .copied()
            .chain([protocol::HEALTH_CHECK])
            .collect();
        for method in &methods {
            address.checked_method_queue(method)?;
        }
        let setup = fabric.open_channel()?;
        topology::declare(&setup, &server_topology(&address, &methods))?;
        let _ = setup.close();

        let dispatcher = Arc::new(self.dispatcher);
        let load = Arc::new(ServerLoad {
            service: D::SERVICE,
            methods: methods.clone(),
            workers: self.workers,
            in_flight: AtomicUsize::new(0),
        });
        let shared = Arc::new(WorkerShared {
            address: address.clone(),
            methods,
            load: Arc::clone(&load),
        });
        let (stop_tx, stop_rx) = bounded::<()>(0);
        // Built first so that an early return stops the workers already started.
        let server = Server {
            address: address.clone(),
            stop: Mutex::new(Some(stop_tx)),
            workers: Mutex::new(Vec::with_capacity(self.workers)),
            load: Arc::clone(&load),
            fabric: fabric.clone(),
        };
        for index in 0..self.workers {
            let (ready_tx, ready_rx) = bounded(1);
            let worker = Worker {
                channel: fabric.open_channel()?,
                dispatcher: Arc::clone(&dispatcher),
                shared: Arc::clone(&shared),
                prefetch: self.prefetch,
                stop: stop_rx.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("fabric-worker-{index}"))
                .spawn(move || worker.run(ready_tx))
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
#[derive(Debug)]
pub struct Server {
    address: ServiceAddress,
    /// Dropping the sender tells every worker to stop.
    stop: Mutex<Option<Sender<()>>>,
    workers: Mutex<Vec<JoinHandle<Result<()>>>>,
    load: Arc<ServerLoad>,
    /// Keeps the connection open while the workers use it.
    fabric: Fabric,
}

impl Server {
    /// The address the server answers at.
    pub fn address(&self) -> &ServiceAddress {
        &self.address
    }

    /// Blocks until the server stops: after [`shutdown`](Self::shutdown) from another thread,
    /// or when its connection is lost (then the error says why).
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
        self.stop.lock().take();
        let outcome = self.wait();
        self.fabric.unregister_server(&self.load);
        outcome
    }

    /// Calls being run right now.
    pub fn calls_in_flight(&self) -> usize {
        self.load.in_flight.load(Ordering::Relaxed)
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

/// What all workers of a server share.
struct WorkerShared {
    address: ServiceAddress,
    /// Method names, `health_check` last; a consumer's index is its method's index.
    methods: Vec<&'static str>,
    load: Arc<ServerLoad>,
}

struct Worker<D> {
    channel: Channel,
    dispatcher: Arc<D>,
    shared: Arc<WorkerShared>,
    prefetch: u16,
    stop: Receiver<()>,
}

impl<D: Dispatch> Worker<D> {
    fn run(self, ready: Sender<Result<()>>) -> Result<()> {
        let consumers = match self.consume() {
            Ok(consumers) => {
                let _ = ready.send(Ok(()));
                consumers
            }
            Err(e) => {
                let _ = ready.send(Err(e.clone()));
                return Err(e);
            }
        };
        let outcome = self.serve(&consumers);
        let drained = self.drain(&consumers);
        drop(consumers);
        let _ = self.channel.close();
        outcome.and(drained)
    }

    fn consume(&self) -> Result<Vec<Consumer<'_>>> {
        // Global: the limit covers the whole channel, not each of its consumers.
        self.channel
            .qos(0, self.prefetch, true)
            .map_err(|e| Error::broker("set the prefetch", e))?;
        self.shared
            .methods
            .iter()
            .map(|method| {
                let queue = self.shared.address.method_queue(method);
                self.channel
                    .basic_consume(queue.as_str(), ConsumerOptions::default())
                    .map_err(|e| Error::broker(format!("consume {queue}"), e))
            })
            .collect()
    }

    /// Takes calls until told to stop.
    fn serve(&self, consumers: &[Consumer<'_>]) -> Result<()> {
        let mut select = Select::new();
        for consumer in consumers {
            select.recv(consumer.receiver());
        }
        let stop_index = select.recv(&self.stop);
        loop {
            let operation = select.select();
            let index = operation.index();
            if index == stop_index {
                let _ = operation.recv(&self.stop);
                return Ok(());
            }
            match operation.recv(consumers[index].receiver()) {
                Ok(ConsumerMessage::Delivery(delivery)) => {
                    self.answer(self.shared.methods[index], delivery)?
                }
                Ok(ConsumerMessage::ServerCancelled) => {
                    return Err(Error::Broker {
                        operation: format!("consume {}", self.shared.methods[index]),
                        reason: "the broker cancelled the consumer (was the queue deleted?)"
                            .to_owned(),
                    })
                }
                Ok(other) => {
                    return Err(Error::ConnectionLost {
                        reason: format!("{other:?}"),
                    })
                }
                Err(_) => return Err(Error::Closed),
            }
        }
    }

    /// Cancels every consumer and answers the calls the broker had already sent, so none is
    /// left unanswered; then nothing more can arrive and the consumers can be dropped.
    fn drain(&self, consumers: &[Consumer<'_>]) -> Result<()> {
        let mut outcome = Ok(());
        for (index, consumer) in consumers.iter().enumerate() {
            if let Err(e) = consumer.cancel() {
                outcome = Err(Error::broker("cancel a consumer", e));
                continue;
            }
            for message in consumer.receiver().iter() {
                match message {
                    ConsumerMessage::Delivery(delivery) => {
                        if let Err(e) = self.answer(self.shared.methods[index], delivery) {
                            outcome = Err(e);
                        }
                    }
                    _ => break,
                }
            }
        }
        outcome
    }

    /// Runs one call, publishes its reply, then acks it.
    fn answer(&self, method: &str, delivery: Delivery) -> Result<()> {
        let properties = &delivery.properties;
        self.shared.load.in_flight.fetch_add(1, Ordering::Relaxed);
        let (kind, content_type, body) =
            self.execute(method, properties.content_type().as_deref(), &delivery.body);
        self.shared.load.in_flight.fetch_sub(1, Ordering::Relaxed);
        match properties.reply_to() {
            Some(reply_to) => {
                let reply = Publish::with_properties(
                    &body,
                    reply_to.as_str(),
                    protocol::reply_properties(
                        properties.correlation_id().clone(),
                        kind,
                        content_type,
                    ),
                );
                self.channel
                    .basic_publish("", reply)
                    .map_err(|e| Error::broker("publish a reply", e))?;
            }
            None => log::warn!(
                "fabric: {}::{method} got a call without reply_to; ran it, nobody to answer",
                self.shared.address
            ),
        }
        delivery
            .ack(&self.channel)
            .map_err(|e| Error::broker("ack a call", e))
    }

    /// Decodes, runs and encodes one call: (reply type, content type, body).
    fn execute(
        &self,
        method: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (&'static str, &'static str, Vec<u8>) {
        let error = |kind: &str, message: String| {
            (
                protocol::TYPE_ERROR,
                JSON_CONTENT_TYPE,
                protocol::encode_error(kind, &message),
            )
        };
        let Some(codec) = Codec::from_content_type(content_type) else {
            return error(
                error_kind::BAD_REQUEST,
                format!("content type {content_type:?} is not one fabric reads (application/json or {})", crate::BINCODE_CONTENT_TYPE),
            );
        };
        let outcome = if method == protocol::HEALTH_CHECK {
            Ok(codec.encode(&true, "the health check"))
        } else {
            catch_unwind(AssertUnwindSafe(|| {
                self.dispatcher.dispatch(method, codec, body)
            }))
        };
        match outcome {
            Ok(Ok(result)) => (protocol::TYPE_RESULT, codec.content_type(), result),
            Ok(Err(Error::UnknownMethod { .. })) => error(
                error_kind::UNKNOWN_METHOD,
                format!("{} has no method `{method}`", D::SERVICE),
            ),
            Ok(Err(Error::Codec { context, reason })) if context.starts_with("decode") => error(
                error_kind::BAD_REQUEST,
                format!("cannot {context}: {reason}"),
            ),
            Ok(Err(e)) => error(error_kind::INTERNAL, e.to_string()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
                log::error!("fabric: {}::{method} panicked: {message}", D::SERVICE);
                error(
                    error_kind::PANIC,
                    format!("the handler panicked: {message}"),
                )
            }
        }
    }
}
