//! The baseline: the fastest honest RPC and publish written directly on amiquip, with the
//! same broker, payloads, TCP_NODELAY, queue arguments and reply mechanism as fabric.

use std::net::TcpStream;
use std::thread::JoinHandle;

use amiquip::{
    AmqpProperties, AmqpValue, Auth, Channel, Confirm, ConfirmSmoother, Connection,
    ConnectionOptions, ConnectionTuning, ConsumerMessage, ConsumerOptions, ExchangeDeclareOptions,
    ExchangeType, FieldTable, Publish, QueueDeclareOptions,
};
use crossbeam_channel::{bounded, select, Sender};

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
            AmqpValue::LongString("rpc.dlx".into()),
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
                                let properties = AmqpProperties::default()
                                    .with_correlation_id(delivery.properties.correlation_id().clone().unwrap())
                                    .with_type_("result".into());
                                channel
                                    .basic_publish("", Publish::with_properties(&delivery.body, reply_to, properties))
                                    .unwrap();
                                delivery.ack(&channel).unwrap();
                            }
                            _ => break,
                        },
                    }
                }
                let _ = consumer.cancel();
                for message in consumer.receiver().iter() {
                    if matches!(message, ConsumerMessage::ClientCancelled) {
                        break;
                    }
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

/// A caller on one channel with an exclusive reply queue, keeping `depth` calls in flight
/// from one thread (depth 1 is the sequential case). Returns each call's latency in ns.
pub fn pipelined_calls(queue: &str, payload: &[u8], calls: usize, depth: usize) -> Vec<u64> {
    let mut connection = connect();
    let channel = connection.open_channel(None).unwrap();
    let reply_queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .unwrap();
    let reply_to = reply_queue.name().to_owned();
    let consumer = reply_queue
        .consume(ConsumerOptions {
            no_ack: true,
            exclusive: true,
            ..ConsumerOptions::default()
        })
        .unwrap();
    let mut started = vec![std::time::Instant::now(); calls];
    let mut latencies = Vec::with_capacity(calls);
    let publish = |channel: &Channel, i: usize| {
        let properties = AmqpProperties::default()
            .with_correlation_id(i.to_string())
            .with_reply_to(reply_to.clone())
            .with_type_("call".into())
            .with_expiration("30000".into());
        let mut message = Publish::with_properties(payload, queue, properties);
        message.mandatory = true;
        channel.basic_publish("", message).unwrap();
    };
    let mut sent = 0;
    while sent < depth.min(calls) {
        started[sent] = std::time::Instant::now();
        publish(&channel, sent);
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
            started[sent] = std::time::Instant::now();
            publish(&channel, sent);
            sent += 1;
        }
        if latencies.len() == calls {
            break;
        }
    }
    let _ = consumer.cancel();
    drop(consumer);
    let _ = connection.close();
    latencies
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
            done_tx.send(std::time::Instant::now()).unwrap();
            let _ = consumer.cancel();
            for message in consumer.receiver().iter() {
                if matches!(message, ConsumerMessage::ClientCancelled) {
                    break;
                }
            }
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
    let start = std::time::Instant::now();
    while confirmed < count {
        if sent < count && sent - confirmed < window {
            let properties = AmqpProperties::default().with_headers(headers.clone());
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
