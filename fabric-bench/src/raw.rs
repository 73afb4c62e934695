//! The baseline: the fastest honest RPC and publish written directly on amiquip, with the
//! same broker, payloads, TCP_NODELAY, queue arguments and reply mechanism as fabric.

use std::net::TcpStream;
use std::thread::JoinHandle;

use std::time::{Duration, Instant};

use amiquip::{
    AmqpProperties, AmqpValue, Auth, Channel, Confirm, ConfirmSmoother, Connection,
    ConnectionOptions, ConnectionTuning, Consumer, ConsumerMessage, ConsumerOptions,
    ExchangeDeclareOptions, ExchangeType, FieldTable, Publish, Queue, QueueDeclareOptions,
};
use crossbeam_channel::{bounded, Select, Sender};
use fabric_core::Codec;

/// Where expired calls go, fabric's (and amqp-fabric's) name for it; fabric declares it.
const DEAD_LETTER_EXCHANGE: &str = "rpc.dlx";

/// A connection on a socket with TCP_NODELAY, as fabric opens its own.
pub fn connect() -> Connection {
    let stream =
        TcpStream::connect(("127.0.0.1", 5672)).expect("connect to RabbitMQ on 127.0.0.1:5672");
    stream.set_nodelay(true).unwrap();
    let stream = mio::net::TcpStream::from_stream(stream).unwrap();
    Connection::insecure_open_stream(
        stream,
        ConnectionOptions::<Auth>::default(),
        ConnectionTuning::default(),
    )
    .expect("AMQP handshake")
}

/// What a raw RPC puts on the wire and how its server consumes: each part of fabric's
/// message shape and consumption as a switch, so that the bench can measure what each costs
/// the broker (`--only shape`).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Server threads, each with a channel of its own.
    pub workers: usize,
    /// Unacknowledged calls a worker may hold.
    pub prefetch: u16,
    /// `basic.qos` channel-wide (`true`, as fabric's workers) or per consumer.
    pub global_qos: bool,
    /// Other method queues each worker also consumes (idle, as `health_check` is).
    pub idle_queues: usize,
    /// How the server acknowledges.
    pub ack: Ack,
    /// The method queue dead-letters to `rpc.dlx`, as amqp-fabric declares it.
    pub dead_letter: bool,
    /// Replies come through RabbitMQ's direct reply-to, not an exclusive reply queue.
    pub direct_reply_to: bool,
    /// The exclusive reply queue is bound to `rpc.dlx` by its `From` header.
    pub reply_binding: bool,
    /// Content type, `type` and delivery mode on calls and replies.
    pub protocol_properties: bool,
    /// The `From` header on calls.
    pub from_header: bool,
    /// Priority 5 on calls.
    pub priority: bool,
    /// A per-message expiration on calls.
    pub expiration: bool,
    /// Calls are published mandatory.
    pub mandatory: bool,
    /// The `traceparent` and `fabric-deadline-ms` headers on calls, `traceparent` on replies.
    pub trace_headers: bool,
}

/// How a raw server acknowledges calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// One `basic.ack` per call, after its reply.
    Each,
    /// One `basic.ack` with `multiple` for every call answered so far, when no further
    /// delivery is waiting (or every 32 calls).
    Multiple,
}

impl Shape {
    /// The fastest RPC on amiquip found here (`--only shape` compares the alternatives),
    /// whatever its messages look like: one server thread with a prefetch of 100, acks
    /// batched with `multiple`, an exclusive reply queue (cheaper for RabbitMQ 3.10 than
    /// direct reply-to), and only the correlation id and `reply_to` as properties. The
    /// ceiling.
    pub fn fastest() -> Shape {
        Shape {
            workers: 1,
            prefetch: 100,
            global_qos: false,
            idle_queues: 0,
            ack: Ack::Multiple,
            dead_letter: false,
            direct_reply_to: false,
            reply_binding: false,
            protocol_properties: false,
            from_header: false,
            priority: false,
            expiration: false,
            mandatory: false,
            trace_headers: false,
        }
    }

    /// What fabric's server and client now put on the wire and how the server consumes: the
    /// amqp-fabric message shape with the trace headers, one channel with a channel-wide
    /// prefetch of 32 (32 workers, prefetch 1) consuming the method queue and
    /// `health_check`, acks batched where tags run on, an exclusive reply queue bound to
    /// `rpc.dlx`.
    pub fn fabric_now() -> Shape {
        Shape {
            workers: 1,
            prefetch: 32,
            global_qos: true,
            idle_queues: 1,
            ack: Ack::Multiple,
            ..Shape::same_messages()
        }
    }

    /// fabric's messages and its server's consumption before the throughput work: the
    /// amqp-fabric message shape, 8 workers, a channel-wide prefetch of 1 each, consuming the
    /// method queue and `health_check`, an exclusive reply queue bound to `rpc.dlx`. The
    /// protocol's baseline ("same messages").
    pub fn same_messages() -> Shape {
        Shape {
            workers: 8,
            prefetch: 1,
            global_qos: true,
            idle_queues: 1,
            ack: Ack::Each,
            dead_letter: true,
            direct_reply_to: false,
            reply_binding: true,
            protocol_properties: true,
            from_header: true,
            priority: true,
            expiration: true,
            mandatory: true,
            trace_headers: true,
        }
    }
}

/// A server of one queue: `workers` threads, each with its own channel and prefetch, that
/// reply with the request body and then ack (as fabric's workers do).
pub struct RawServer {
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    _connection: Connection,
}

impl RawServer {
    pub fn start(queue: &str, shape: &Shape) -> RawServer {
        let mut connection = connect();
        let setup = connection.open_channel(None).unwrap();
        let mut arguments = FieldTable::default();
        if shape.dead_letter {
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AmqpValue::LongString(DEAD_LETTER_EXCHANGE.into()),
            );
        }
        let mut queues = vec![queue.to_owned()];
        queues.extend((0..shape.idle_queues).map(|i| format!("{queue}.idle{i}")));
        for queue in &queues {
            setup
                .queue_declare(
                    queue.as_str(),
                    QueueDeclareOptions {
                        auto_delete: true,
                        arguments: arguments.clone(),
                        ..QueueDeclareOptions::default()
                    },
                )
                .unwrap();
        }
        let (stop, stop_rx) = bounded::<()>(0);
        let mut threads = Vec::new();
        for _ in 0..shape.workers {
            let channel = connection.open_channel(None).unwrap();
            let (stop_rx, queues, shape) = (stop_rx.clone(), queues.clone(), shape.clone());
            let (ready_tx, ready_rx) = bounded(0);
            threads.push(std::thread::spawn(move || {
                channel.qos(0, shape.prefetch, shape.global_qos).unwrap();
                let consumers: Vec<Consumer<'_>> = queues
                    .iter()
                    .map(|q| {
                        channel
                            .basic_consume(q.as_str(), ConsumerOptions::default())
                            .unwrap()
                    })
                    .collect();
                ready_tx.send(()).unwrap();
                let mut select = Select::new();
                for consumer in &consumers {
                    select.recv(consumer.receiver());
                }
                let stop_index = select.recv(&stop_rx);
                let mut unacked = 0;
                loop {
                    let operation = select.select();
                    let index = operation.index();
                    if index == stop_index {
                        let _ = operation.recv(&stop_rx);
                        break;
                    }
                    let receiver = consumers[index].receiver();
                    let Ok(ConsumerMessage::Delivery(delivery)) = operation.recv(receiver) else {
                        break;
                    };
                    let reply_to = delivery.properties.reply_to().clone().unwrap();
                    let correlation_id = delivery.properties.correlation_id().clone().unwrap();
                    let properties = reply_properties(correlation_id, &shape);
                    channel
                        .basic_publish(
                            "",
                            Publish::with_properties(&delivery.body, reply_to, properties),
                        )
                        .unwrap();
                    match shape.ack {
                        Ack::Each => delivery.ack(&channel).unwrap(),
                        Ack::Multiple => {
                            unacked += 1;
                            if unacked >= 32 || receiver.is_empty() {
                                delivery.ack_multiple(&channel).unwrap();
                                unacked = 0;
                            }
                        }
                    }
                }
                for consumer in consumers {
                    retire(consumer);
                }
            }));
            ready_rx.recv().unwrap();
        }
        let _ = setup.close();
        RawServer {
            stop: Some(stop),
            threads,
            _connection: connection,
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A trace context header as fabric sends it: W3C `traceparent`.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The properties of a call in `shape`; with everything on, as fabric's protocol
/// (amqp-fabric's) has them, so that raw and fabric put the same messages on the wire.
fn call_properties(
    correlation_id: String,
    reply_to: &str,
    from: &str,
    shape: &Shape,
) -> AmqpProperties {
    let mut properties = AmqpProperties::default()
        .with_correlation_id(correlation_id)
        .with_reply_to(reply_to.into());
    if shape.protocol_properties {
        properties = properties
            .with_content_type(Codec::Bincode.content_type().into())
            .with_type_("call".into())
            .with_delivery_mode(1);
    }
    let mut headers = FieldTable::default();
    if shape.from_header {
        headers.insert("From".into(), AmqpValue::LongString(from.into()));
    }
    if shape.trace_headers {
        headers.insert(
            "traceparent".into(),
            AmqpValue::LongString(TRACEPARENT.into()),
        );
        headers.insert(
            "fabric-deadline-ms".into(),
            AmqpValue::LongLongInt(1_900_000_000_000),
        );
    }
    if !headers.is_empty() {
        properties = properties.with_headers(headers);
    }
    if shape.priority {
        properties = properties.with_priority(5);
    }
    if shape.expiration {
        properties = properties.with_expiration("30000".into());
    }
    properties
}

/// The properties of a reply in `shape`.
fn reply_properties(correlation_id: String, shape: &Shape) -> AmqpProperties {
    let mut properties = AmqpProperties::default().with_correlation_id(correlation_id);
    if shape.protocol_properties {
        properties = properties
            .with_content_type(Codec::Bincode.content_type().into())
            .with_type_("result".into())
            .with_delivery_mode(1);
    }
    if shape.trace_headers {
        let mut headers = FieldTable::default();
        headers.insert(
            "traceparent".into(),
            AmqpValue::LongString(TRACEPARENT.into()),
        );
        properties = properties.with_headers(headers);
    }
    properties
}

/// RabbitMQ's direct reply-to pseudo-queue: replies go straight to the consuming channel.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Where replies come back on `channel`, as `shape` has it: direct reply-to, or an exclusive,
/// server-named reply queue (bound to the dead-letter exchange by its `From` header, as
/// fabric's are, when `reply_binding`); its no-ack consumer and the name calls carry.
fn reply_queue<'c>(channel: &'c Channel, shape: &Shape) -> (String, Consumer<'c>) {
    let options = ConsumerOptions {
        no_ack: true,
        exclusive: true,
        ..ConsumerOptions::default()
    };
    if shape.direct_reply_to {
        let consumer = channel.basic_consume(DIRECT_REPLY_TO, options).unwrap();
        return (DIRECT_REPLY_TO.to_owned(), consumer);
    }
    let queue = exclusive_queue(channel);
    let name = queue.name().to_owned();
    if shape.reply_binding {
        // Declared as fabric declares it: auto-delete, so it may be gone since the last run.
        channel
            .exchange_declare(
                ExchangeType::Headers,
                DEAD_LETTER_EXCHANGE,
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..ExchangeDeclareOptions::default()
                },
            )
            .unwrap();
        let mut arguments = FieldTable::default();
        arguments.insert("From".into(), AmqpValue::LongString(name.clone()));
        arguments.insert("x-match".into(), AmqpValue::LongString("any".into()));
        channel
            .queue_bind(name.as_str(), DEAD_LETTER_EXCHANGE, "", arguments)
            .unwrap();
    }
    let consumer = queue.consume(options).unwrap();
    (name, consumer)
}

/// A server-named queue that lives as long as `channel`'s connection.
pub(crate) fn exclusive_queue(channel: &Channel) -> Queue<'_> {
    channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap()
}

/// Cancels a consumer and drains it before it is dropped: amiquip's I/O thread fails the
/// whole connection if it delivers to a dropped consumer.
pub(crate) fn retire(consumer: Consumer<'_>) {
    let _ = consumer.cancel();
    for message in consumer.receiver().iter() {
        if matches!(message, ConsumerMessage::ClientCancelled) {
            break;
        }
    }
}

fn publish_call(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    id: String,
    reply_to: &str,
    shape: &Shape,
) {
    let properties = call_properties(id, reply_to, reply_to, shape);
    let mut message = Publish::with_properties(payload, queue, properties);
    // Unroutable calls come back, as fabric's do.
    message.mandatory = shape.mandatory;
    channel.basic_publish("", message).unwrap();
}

/// The calls of one raw run: each call's latency in ns, and the time from the first call
/// sent to the last reply (connection and queue set-up excluded, as fabric's client is
/// connected before its runs).
pub struct Run {
    pub latencies: Vec<u64>,
    pub elapsed: Duration,
}

impl Run {
    pub fn calls_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// A caller on one channel, keeping `depth` calls in flight from one thread (depth 1 is the
/// sequential case).
pub fn pipelined_calls(
    queue: &str,
    payload: &[u8],
    calls: usize,
    depth: usize,
    shape: &Shape,
) -> Run {
    let mut connection = connect();
    let channel = connection.open_channel(None).unwrap();
    let (reply_to, consumer) = reply_queue(&channel, shape);
    let mut started = vec![Instant::now(); calls];
    let mut latencies = Vec::with_capacity(calls);
    let start = Instant::now();
    let mut sent = 0;
    while sent < depth.min(calls) {
        started[sent] = Instant::now();
        publish_call(&channel, queue, payload, sent.to_string(), &reply_to, shape);
        sent += 1;
    }
    for message in consumer.receiver().iter() {
        let ConsumerMessage::Delivery(delivery) = message else {
            panic!("reply queue ended")
        };
        let id: usize = delivery
            .properties
            .correlation_id()
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(delivery.body.len(), payload.len());
        latencies.push(started[id].elapsed().as_nanos() as u64);
        if sent < calls {
            started[sent] = Instant::now();
            publish_call(&channel, queue, payload, sent.to_string(), &reply_to, shape);
            sent += 1;
        }
        if latencies.len() == calls {
            break;
        }
    }
    let elapsed = start.elapsed();
    retire(consumer);
    let _ = connection.close();
    Run { latencies, elapsed }
}

/// `threads` caller threads on one connection, each with its own channel and reply queue
/// (what a caller with threads writes on amiquip, whose `Channel` is not `Sync`), each
/// making its share of `calls` one after another. Returns calls per second.
pub fn threaded_calls(
    queue: &str,
    payload: &[u8],
    calls: usize,
    threads: usize,
    shape: &Shape,
) -> f64 {
    let mut connection = connect();
    let channels: Vec<Channel> = (0..threads)
        .map(|_| connection.open_channel(None).unwrap())
        .collect();
    let per_thread = calls / threads;
    let (ready_tx, ready_rx) = bounded::<()>(threads);
    let (go_tx, go_rx) = bounded::<()>(0);
    let (start, ends) = std::thread::scope(|scope| {
        let handles: Vec<_> = channels
            .into_iter()
            .map(|channel| {
                let (ready_tx, go_rx) = (ready_tx.clone(), go_rx.clone());
                scope.spawn(move || {
                    let (reply_to, consumer) = reply_queue(&channel, shape);
                    ready_tx.send(()).unwrap();
                    // Every thread is set up before the clock starts.
                    let _ = go_rx.recv();
                    for i in 0..per_thread {
                        publish_call(&channel, queue, payload, i.to_string(), &reply_to, shape);
                        match consumer.receiver().recv() {
                            Ok(ConsumerMessage::Delivery(delivery)) => {
                                assert_eq!(delivery.body.len(), payload.len());
                            }
                            other => panic!("reply queue ended: {other:?}"),
                        }
                    }
                    let end = Instant::now();
                    retire(consumer);
                    end
                })
            })
            .collect();
        for _ in 0..threads {
            ready_rx.recv().unwrap();
        }
        let start = Instant::now();
        drop(go_tx);
        let ends: Vec<Instant> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (start, ends)
    });
    let elapsed = ends.into_iter().max().unwrap() - start;
    let _ = connection.close();
    (per_thread * threads) as f64 / elapsed.as_secs_f64()
}

/// Publishes `count` messages of `size` bytes to a headers exchange with publisher confirms,
/// at most `window` unconfirmed, while a consumer on another connection counts them.
/// Returns messages per second, end to end.
pub fn stream(exchange: &str, queue: &str, size: usize, count: usize, window: usize) -> f64 {
    let mut consumer_connection = connect();
    let consumer_channel = consumer_connection.open_channel(None).unwrap();
    consumer_channel
        .exchange_declare(
            ExchangeType::Headers,
            exchange,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
        )
        .unwrap();
    consumer_channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-match".into(), AmqpValue::LongString("all".into()));
    consumer_channel
        .queue_bind(queue, exchange, "", arguments)
        .unwrap();
    let (done_tx, done_rx) = bounded(1);
    let queue_name = queue.to_owned();
    let counter = std::thread::Builder::new()
        .name("raw-consumer".into())
        .spawn(move || {
            consumer_channel.qos(0, 64, false).unwrap();
            let consumer = consumer_channel
                .basic_consume(queue_name, ConsumerOptions::default())
                .unwrap();
            let mut received = 0;
            for message in consumer.receiver().iter() {
                if let ConsumerMessage::Delivery(delivery) = message {
                    delivery.ack(&consumer_channel).unwrap();
                    received += 1;
                    if received == count {
                        break;
                    }
                }
            }
            done_tx.send(Instant::now()).unwrap();
            retire(consumer);
        })
        .unwrap();

    let mut connection = connect();
    let channel = connection.open_channel(None).unwrap();
    let confirms = channel.listen_for_publisher_confirms().unwrap();
    channel.enable_publisher_confirms().unwrap();
    let body = vec![7u8; size];
    let mut headers = FieldTable::default();
    headers.insert("service_id".into(), AmqpValue::LongString("raw".into()));
    headers.insert("service_type".into(), AmqpValue::LongString("bench".into()));
    let mut smoother = ConfirmSmoother::new();
    let (mut sent, mut confirmed) = (0usize, 0usize);
    let start = Instant::now();
    while confirmed < count {
        if sent < count && sent - confirmed < window {
            // As fabric's `publish_data`: the codec's content type and the stamped headers.
            let properties = AmqpProperties::default()
                .with_headers(headers.clone())
                .with_content_type(Codec::Bincode.content_type().into());
            channel
                .basic_publish(exchange, Publish::with_properties(&body, "", properties))
                .unwrap();
            sent += 1;
            continue;
        }
        let confirm = confirms.recv().unwrap();
        for single in smoother.process(confirm) {
            assert!(
                matches!(single, Confirm::Ack(_)),
                "the broker nacked a message"
            );
            confirmed += 1;
        }
    }
    let end = done_rx.recv().unwrap();
    counter.join().unwrap();
    let _ = connection.close();
    let _ = consumer_connection.close();
    count as f64 / (end - start).as_secs_f64()
}
