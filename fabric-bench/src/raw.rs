//! The baseline: the fastest honest RPC and publish written directly on amiquip, with the
//! same broker, payloads, TCP_NODELAY, queue arguments and reply mechanism as fabric.

use std::net::TcpStream;
use std::thread::JoinHandle;

use std::time::{Duration, Instant};

use amiquip::{
    AmqpProperties, AmqpValue, Auth, Channel, Confirm, ConfirmSmoother, Connection,
    ConnectionOptions, ConnectionTuning, Consumer, ConsumerMessage, ConsumerOptions,
    ExchangeDeclareOptions, ExchangeType, FieldTable, Publish, QueueDeclareOptions,
};
use crossbeam_channel::{bounded, select, Sender};
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

/// A server of one queue: `workers` threads, each with its own channel and prefetch, that
/// reply with the request body and then ack (as fabric's workers do).
pub struct RawServer {
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    _connection: Connection,
}

impl RawServer {
    pub fn start(queue: &str, workers: usize, prefetch: u16) -> RawServer {
        let mut connection = connect();
        let setup = connection.open_channel(None).unwrap();
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AmqpValue::LongString(DEAD_LETTER_EXCHANGE.into()),
        );
        setup
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    auto_delete: true,
                    arguments,
                    ..QueueDeclareOptions::default()
                },
            )
            .unwrap();
        let (stop, stop_rx) = bounded::<()>(0);
        let mut threads = Vec::new();
        for _ in 0..workers {
            let channel = connection.open_channel(None).unwrap();
            let (stop_rx, queue) = (stop_rx.clone(), queue.to_owned());
            let (ready_tx, ready_rx) = bounded(0);
            threads.push(std::thread::spawn(move || {
                channel.qos(0, prefetch, true).unwrap();
                let consumer = channel.basic_consume(queue, ConsumerOptions::default()).unwrap();
                ready_tx.send(()).unwrap();
                loop {
                    select! {
                        recv(stop_rx) -> _ => break,
                        recv(consumer.receiver()) -> message => match message {
                            Ok(ConsumerMessage::Delivery(delivery)) => {
                                let reply_to = delivery.properties.reply_to().clone().unwrap();
                                let correlation_id = delivery.properties.correlation_id().clone().unwrap();
                                let properties = reply_properties(correlation_id);
                                channel
                                    .basic_publish("", Publish::with_properties(&delivery.body, reply_to, properties))
                                    .unwrap();
                                delivery.ack(&channel).unwrap();
                            }
                            _ => break,
                        },
                    }
                }
                retire(consumer);
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

/// The properties of a call, as fabric's protocol (amqp-fabric's) has them, so that raw and
/// fabric put the same messages on the wire: content type, type, correlation id, reply queue,
/// the `From` header that brings expired calls back, priority 5, transient, expiration.
fn call_properties(correlation_id: String, reply_to: &str) -> AmqpProperties {
    let mut headers = FieldTable::default();
    headers.insert("From".into(), AmqpValue::LongString(reply_to.into()));
    AmqpProperties::default()
        .with_content_type(Codec::Bincode.content_type().into())
        .with_type_("call".into())
        .with_correlation_id(correlation_id)
        .with_reply_to(reply_to.into())
        .with_headers(headers)
        .with_priority(5)
        .with_delivery_mode(1)
        .with_expiration("30000".into())
}

/// The properties of a reply, as fabric's protocol has them.
fn reply_properties(correlation_id: String) -> AmqpProperties {
    AmqpProperties::default()
        .with_content_type(Codec::Bincode.content_type().into())
        .with_type_("result".into())
        .with_delivery_mode(1)
        .with_correlation_id(correlation_id)
}

/// An exclusive, server-named reply queue on `channel`, bound to the dead-letter exchange by
/// its `From` header as fabric's are, and its no-ack consumer.
fn reply_queue(channel: &Channel) -> (String, Consumer<'_>) {
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
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap();
    let name = queue.name().to_owned();
    let mut arguments = FieldTable::default();
    arguments.insert("From".into(), AmqpValue::LongString(name.clone()));
    arguments.insert("x-match".into(), AmqpValue::LongString("any".into()));
    channel
        .queue_bind(name.as_str(), DEAD_LETTER_EXCHANGE, "", arguments)
        .unwrap();
    let consumer = queue
        .consume(ConsumerOptions {
            no_ack: true,
            exclusive: true,
            ..ConsumerOptions::default()
        })
        .unwrap();
    (name, consumer)
}

/// Cancels a consumer and drains it before it is dropped: amiquip's I/O thread fails the
/// whole connection if it delivers to a dropped consumer.
fn retire(consumer: Consumer<'_>) {
    let _ = consumer.cancel();
    for message in consumer.receiver().iter() {
        if matches!(message, ConsumerMessage::ClientCancelled) {
            break;
        }
    }
}

fn publish_call(channel: &Channel, queue: &str, payload: &[u8], id: String, reply_to: &str) {
    let mut message = Publish::with_properties(payload, queue, call_properties(id, reply_to));
    // Unroutable calls come back, as fabric's do.
    message.mandatory = true;
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

/// A caller on one channel with an exclusive reply queue, keeping `depth` calls in flight
/// from one thread (depth 1 is the sequential case).
pub fn pipelined_calls(queue: &str, payload: &[u8], calls: usize, depth: usize) -> Run {
    let mut connection = connect();
    let channel = connection.open_channel(None).unwrap();
    let (reply_to, consumer) = reply_queue(&channel);
    let mut started = vec![Instant::now(); calls];
    let mut latencies = Vec::with_capacity(calls);
    let start = Instant::now();
    let mut sent = 0;
    while sent < depth.min(calls) {
        started[sent] = Instant::now();
        publish_call(&channel, queue, payload, sent.to_string(), &reply_to);
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
            publish_call(&channel, queue, payload, sent.to_string(), &reply_to);
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
pub fn threaded_calls(queue: &str, payload: &[u8], calls: usize, threads: usize) -> f64 {
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
                    let (reply_to, consumer) = reply_queue(&channel);
                    ready_tx.send(()).unwrap();
                    // Every thread is set up before the clock starts.
                    let _ = go_rx.recv();
                    for i in 0..per_thread {
                        publish_call(&channel, queue, payload, i.to_string(), &reply_to);
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
