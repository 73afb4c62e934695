//! The `fabric-replies` thread: a reply session per connection, run by
//! [`run_sessions`](crate::broker::sessions::run_sessions) like every channel-owning thread.
//! It owns the consuming channel and its consumer, and ends the session when the connection
//! or a channel breaks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{Channel, Consumer, ConsumerMessage, ConsumerOptions, QueueDeclareOptions};
use crossbeam_channel::{select, Receiver, Sender};

use super::session::{End, ReplySession};
use super::slot::Slot;
use crate::broker::link::Link;
use crate::broker::sessions::{run_sessions, Session, Start};
use crate::broker::topology::{self, Declaration};
use crate::error::{Error, Result};

/// What the reply queue needs besides itself: the dead-letter exchange, and a binding that
/// brings our expired calls back (they carry our queue name in the `From` header).
fn reply_topology(reply_queue: &str) -> Vec<Declaration> {
    vec![
        topology::rpc_dead_letter_exchange(),
        Declaration::Binding {
            queue: reply_queue.to_owned(),
            exchange: topology::RPC_DLX.to_owned(),
            routing_key: String::new(),
            arguments: topology::string_table([("From", reply_queue), ("x-match", "any")]),
        },
    ]
}

/// The body of `fabric-replies`: a session per connection until told to stop, then no
/// session any more. `started` hears how the first went: a connection that is down counts
/// as started, since calls wait for the next session anyway.
pub(super) fn reply_thread(
    link: &Link,
    slot: &Slot,
    stop: &Receiver<()>,
    started: Sender<Result<()>>,
) {
    let _ = run_sessions(
        link,
        "RPC replies",
        Start::Patient,
        stop,
        started,
        |session| serve_session(link, slot, stop, session),
    );
    if let Some(session) = slot.close() {
        session.end(End::Closed);
    }
}

/// One session: sets up the reply queue and the call channel on this connection, puts the
/// session in the slot for callers, and waits until it ends. `Ok` when told to stop, `Err`
/// when a channel or the connection broke.
fn serve_session(
    link: &Link,
    slot: &Slot,
    stop: &Receiver<()>,
    session: &mut Session<'_>,
) -> Result<()> {
    let channel = session.channel;
    let generation = session.generation;
    // A server-named queue, as aio-pika's: exclusive so it dies with the connection.
    let reply_queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
        )
        .map_err(|e| Error::broker("declare the reply queue", e))?
        .name()
        .to_owned();
    // On a channel of its own: rpc.dlx is auto-delete, and may vanish under the binding.
    topology::declare_anew(link, &reply_topology(&reply_queue))?;
    // On the same connection as the reply queue.
    let publish = link.open_channel_on(generation)?;
    let returns = match publish.listen_for_returns() {
        Ok(returns) => returns,
        Err(e) => {
            let _ = publish.close();
            return Err(Error::broker("listen for returned calls", e));
        }
    };
    let consumer = match consume(channel, &reply_queue) {
        Ok(consumer) => consumer,
        Err(e) => {
            let _ = publish.close();
            return Err(e);
        }
    };
    let replies = Arc::new(ReplySession::new(
        generation,
        reply_queue,
        publish,
        consumer.receiver().clone(),
        returns,
    ));
    let end = if slot.open(&replies) {
        session.ready();
        log::debug!(
            "fabric: RPC replies on connection {generation} go to {}",
            replies.reply_queue()
        );
        watch(link, slot, stop, &replies)
    } else {
        End::Closed
    };
    // Out of the slot first, so no new call is sent in it.
    slot.retire(&replies);
    replies.end(end);
    retire(consumer);
    replies.close_publishing();
    match replies.end_reason() {
        Some(End::Interrupted(reason)) if !slot.is_closed() => {
            Err(Error::ConnectionLost { reason })
        }
        _ => Ok(()),
    }
}

fn consume<'c>(channel: &'c Channel, reply_queue: &str) -> Result<Consumer<'c>> {
    let options = ConsumerOptions {
        no_ack: true,
        exclusive: true,
        ..ConsumerOptions::default()
    };
    channel
        .basic_consume(reply_queue, options)
        .map_err(|e| Error::broker("consume the reply queue", e))
}

/// Waits until the session ends: told to stop, the connection it runs on is gone, or a
/// caller saw one of its channels end.
fn watch(link: &Link, slot: &Slot, stop: &Receiver<()>, session: &ReplySession) -> End {
    // Registered before the first look at the link, so no change goes unseen.
    let changes = link.changes();
    loop {
        if slot.is_closed() {
            return End::Closed;
        }
        if !link.is_up(session.generation()) {
            return End::Interrupted(link.state().to_string());
        }
        select! {
            recv(stop) -> _ => return End::Closed,
            // Ended already (by a caller, or by `Caller::stop`): its first reason stands,
            // and this one is ignored.
            recv(session.ending()) -> _ => return End::Closed,
            recv(changes) -> _ => {}
        }
    }
}

/// Cancels the consumer and drains it before it is dropped, so amiquip's I/O thread never
/// sends to a dropped consumer; on a dead connection the cancel fails at once.
fn retire(consumer: Consumer<'_>) {
    if consumer.cancel().is_ok() {
        // Callers may take the cancel-ok themselves; the receiver then disconnects, or at
        // worst this waits a bounded time.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(message) = consumer.receiver().recv_deadline(deadline) {
            if matches!(message, ConsumerMessage::ClientCancelled) {
                break;
            }
        }
    }
    drop(consumer);
}
