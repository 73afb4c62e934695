//! Everything fabric declares on the broker, as data.
//!
//! Each feature describes its exchanges, queues and bindings as a list of [`Declaration`]s and
//! hands it to [`declare`]. Nothing else in the crate calls `exchange_declare` or `queue_bind`,
//! so after a reconnect the same lists can be replayed on a new connection.

use amiquip::{
    AmqpValue, Channel, ExchangeDeclareOptions, ExchangeType, FieldTable, QueueDeclareOptions,
};

use super::link::Link;
use crate::error::{Error, Result};

/// The headers exchange where expired calls are dead-lettered, as aio-pika names it.
pub(crate) const RPC_DLX: &str = "rpc.dlx";

/// One thing fabric creates on the broker.
#[derive(Debug, Clone)]
pub(crate) enum Declaration {
    /// An exchange.
    Exchange {
        name: String,
        kind: ExchangeType,
        durable: bool,
        auto_delete: bool,
    },
    /// A named queue.
    Queue {
        name: String,
        durable: bool,
        auto_delete: bool,
        exclusive: bool,
        arguments: FieldTable,
    },
    /// A binding of a queue to an exchange.
    Binding {
        queue: String,
        exchange: String,
        routing_key: String,
        arguments: FieldTable,
    },
}

/// Declares each item in order on `channel`.
///
/// RabbitMQ refuses to redeclare an exchange or queue with other flags
/// (PRECONDITION_FAILED), and that error also closes the channel: the items here use exactly
/// the flags amqp-fabric uses, so Rust and Python peers can declare the same names.
pub(crate) fn declare(channel: &Channel, declarations: &[Declaration]) -> Result<()> {
    try_declare(channel, declarations)
        .map_err(|(item, e)| Error::broker(format!("declare {item}"), e))
}

/// How many times [`declare_anew`] starts over after an exchange vanished under it.
const VANISHED_ATTEMPTS: u32 = 3;

/// Declares `declarations` on a channel of its own, starting over on a fresh channel when a
/// binding finds its exchange gone (NOT_FOUND, which closes the channel): an auto-delete
/// exchange (`rpc.dlx`, a service's exchange) is deleted by the broker when another
/// participant's last binding to it goes, which can happen between its declaration and the
/// binding that follows.
pub(crate) fn declare_anew(link: &Link, declarations: &[Declaration]) -> Result<()> {
    let mut attempt = 1;
    loop {
        let (channel, _) = link.open_channel()?;
        match try_declare(&channel, declarations) {
            Ok(()) => {
                let _ = channel.close();
                return Ok(());
            }
            Err((Declaration::Binding { exchange, .. }, e))
                if is_not_found(&e) && attempt < VANISHED_ATTEMPTS =>
            {
                log::debug!("fabric: exchange {exchange} vanished while being bound to; again");
                attempt += 1;
            }
            Err((item, e)) => return Err(Error::broker(format!("declare {item}"), e)),
        }
    }
}

fn is_not_found(error: &amiquip::Error) -> bool {
    matches!(error, amiquip::Error::ServerClosedChannel { code: 404, .. })
}

/// Declares each item in order; the first that fails, and why. The error is large, but it
/// lives only until the caller looks at it, on a path that has just met a refusal.
#[allow(clippy::result_large_err)]
fn try_declare<'d>(
    channel: &Channel,
    declarations: &'d [Declaration],
) -> std::result::Result<(), (&'d Declaration, amiquip::Error)> {
    for item in declarations {
        let outcome = match item {
            Declaration::Exchange {
                name,
                kind,
                durable,
                auto_delete,
            } => channel
                .exchange_declare(
                    kind.clone(),
                    name.as_str(),
                    ExchangeDeclareOptions {
                        durable: *durable,
                        auto_delete: *auto_delete,
                        internal: false,
                        arguments: FieldTable::default(),
                    },
                )
                .map(drop),
            Declaration::Queue {
                name,
                durable,
                auto_delete,
                exclusive,
                arguments,
            } => channel
                .queue_declare(
                    name.as_str(),
                    QueueDeclareOptions {
                        durable: *durable,
                        exclusive: *exclusive,
                        auto_delete: *auto_delete,
                        arguments: arguments.clone(),
                    },
                )
                .map(drop),
            Declaration::Binding {
                queue,
                exchange,
                routing_key,
                arguments,
            } => channel.queue_bind(
                queue.as_str(),
                exchange.as_str(),
                routing_key.as_str(),
                arguments.clone(),
            ),
        };
        outcome.map_err(|e| (item, e))?;
    }
    Ok(())
}

impl std::fmt::Display for Declaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Declaration::Exchange { name, .. } => write!(f, "exchange {name:?}"),
            Declaration::Queue { name, .. } => write!(f, "queue {name:?}"),
            Declaration::Binding {
                queue, exchange, ..
            } => write!(f, "binding of queue {queue:?} to exchange {exchange:?}"),
        }
    }
}

/// A field table from string pairs, for queue arguments and header bindings.
pub(crate) fn string_table<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> FieldTable {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AmqpValue::LongString(v.to_owned())))
        .collect()
}

/// A quorum queue: durable, replicated on a majority of the cluster's nodes (it outlives the
/// loss of any one of three), never auto-deleted; `arguments` beside its type.
pub(crate) fn quorum_queue(name: String, mut arguments: FieldTable) -> Declaration {
    arguments.insert(
        "x-queue-type".to_owned(),
        AmqpValue::LongString("quorum".to_owned()),
    );
    Declaration::Queue {
        name,
        durable: true,
        auto_delete: false,
        exclusive: false,
        arguments,
    }
}

/// A queue argument that is a number (`x-delivery-limit`, `x-expires` in milliseconds).
pub(crate) fn number_argument(value: u64) -> AmqpValue {
    AmqpValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The exchange `rpc.dlx`, where expired calls go back to their callers.
pub(crate) fn rpc_dead_letter_exchange() -> Declaration {
    Declaration::Exchange {
        name: RPC_DLX.to_owned(),
        kind: ExchangeType::Headers,
        durable: false,
        auto_delete: true,
    }
}
