//! The `fabric-replies` thread: sets up a reply session per connection, owns its consuming
//! channel and consumer, and ends the session when the connection or a channel breaks.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiquip::{Channel, Consumer, ConsumerMessage, ConsumerOptions, QueueDeclareOptions};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;

use super::session::{End, Pending, ReplySession};
use super::waiting::Readers;
use super::Shared;
use crate::broker::link::{ConnectionState, Unavailable};
use crate::broker::topology::{self, Declaration};
use crate::{Error, Result};

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

/// The body of `fabric-replies`: one session per connection until told to stop. After a
/// session fails it waits for a newer connection when the connection broke, or backs off
/// when only a channel did. `started` hears how the first session went.
pub(super) fn reply_thread(shared: &Shared, stop: &Receiver<()>, started: Sender<Result<()>>) {
    let link = &*shared.link;
    let mut started = Some(started);
    let mut failures = 0u32;
    loop {
        let (generation, error) = match run_session(shared, stop, &mut started, &mut failures) {
            Ok(()) => break,
            Err(failed) => failed,
        };
        if error == Error::Closed || link.state() == ConnectionState::Closed {
            if let Some(started) = started.take() {
                let _ = started.send(Err(Error::Closed));
            }
            break;
        }
        let lost = !link.is_up(generation);
        if let Some(started) = started.take() {
            let reported = match lost {
                true => Error::ConnectionLost {
                    reason: error.to_string(),
                },
                false => error.clone(),
            };
            let _ = started.send(Err(reported));
            // A first session refused on a working connection would be refused again.
            if !lost {
                break;
            }
        }
        let waited = if lost {
            log::info!("fabric: RPC replies resume when the connection is back");
            link.wait_newer(generation, Some(stop), None).map(drop)
        } else {
            let delay = link.backoff().delay(failures);
            failures += 1;
            log::warn!("fabric: RPC replies failed: {error}; starting again in {delay:?}");
            match link.wait_newer(generation, Some(stop), Some(Instant::now() + delay)) {
                Err(Unavailable::TimedOut(_)) => Ok(()),
                other => other.map(drop),
            }
        };
        if waited.is_err() {
            break;
        }
    }
    if let Some(session) = shared.close() {
        session.end(End::Closed);
    }
}

/// One session: sets up the reply queue and both channels on the current connection,
/// publishes the session for callers, and waits until it ends. `Ok` when told to stop,
/// else the generation it ran on and why it ended.
fn run_session(
    shared: &Shared,
    stop: &Receiver<()>,
    started: &mut Option<Sender<Result<()>>>,
    failures: &mut u32,
) -> std::result::Result<(), (u64, Error)> {
    let link = &*shared.link;
    let (channel, generation) = link.open_channel().map_err(|e| (link.generation(), e))?;
    let outcome = serve_session(shared, stop, started, failures, &channel, generation);
    let _ = channel.close();
    outcome.map_err(|e| (generation, e))
}

fn serve_session(
    shared: &Shared,
    stop: &Receiver<()>,
    started: &mut Option<Sender<Result<()>>>,
    failures: &mut u32,
    channel: &Channel,
    generation: u64,
) -> Result<()> {
    let link = &*shared.link;
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
    topology::declare(channel, &reply_topology(&reply_queue))?;
    let (publish, publish_generation) = link.open_channel()?;
    if publish_generation != generation {
        let _ = publish.close();
        return Err(Error::ConnectionLost {
            reason: "the connection changed while the reply queue was set up".to_owned(),
        });
    }
    let returns = match publish.listen_for_returns() {
        Ok(returns) => returns,
        Err(e) => {
            let _ = publish.close();
            return Err(Error::broker("listen for returned calls", e));
        }
    };
    let options = ConsumerOptions {
        no_ack: true,
        exclusive: true,
        ..ConsumerOptions::default()
    };
    let consumer = match channel.basic_consume(reply_queue.as_str(), options) {
        Ok(consumer) => consumer,
        Err(e) => {
            let _ = publish.close();
            return Err(Error::broker("consume the reply queue", e));
        }
    };
    let (alive_tx, alive_rx) = bounded::<()>(0);
    let session = Arc::new(ReplySession {
        generation,
        reply_queue,
        publish: Mutex::new(Some(publish)),
        pending: Mutex::new(Pending::default()),
        ended: AtomicBool::new(false),
        consumer: consumer.receiver().clone(),
        returns,
        readers: Mutex::new(Readers::default()),
        alive: Mutex::new(Some(alive_tx)),
        ending: alive_rx.clone(),
    });
    let end = {
        let mut slot = shared.slot.lock();
        if slot.closed {
            Some(End::Closed)
        } else {
            slot.session = Some(Arc::clone(&session));
            None
        }
    };
    let end = match end {
        Some(end) => end,
        None => {
            shared.changed.notify_all();
            *failures = 0;
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
            log::debug!(
                "fabric: RPC replies on connection {generation} go to {}",
                session.reply_queue
            );
            watch_session(shared, stop, &session, &alive_rx)
        }
    };
    // Out of the slot first, so no new call is sent in it.
    {
        let mut slot = shared.slot.lock();
        if slot
            .session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &session))
        {
            slot.session = None;
        }
    }
    session.end(end);
    retire(consumer);
    if let Some(publish) = session.publish.lock().take() {
        let _ = publish.close();
    }
    let end = session.pending.lock().ended.clone();
    match end {
        Some(End::Interrupted(reason)) if !shared.is_closed() => {
            Err(Error::ConnectionLost { reason })
        }
        _ => Ok(()),
    }
}

/// Waits until the session ends: told to stop, the connection it runs on is gone, or a
/// caller saw one of its channels end.
fn watch_session(
    shared: &Shared,
    stop: &Receiver<()>,
    session: &ReplySession,
    alive: &Receiver<()>,
) -> End {
    let link = &*shared.link;
    // Registered before the first look at the link, so no change goes unseen.
    let changes = link.changes();
    loop {
        if shared.is_closed() {
            return End::Closed;
        }
        if !link.is_up(session.generation) {
            return End::Interrupted(link.state().to_string());
        }
        select! {
            recv(stop) -> _ => return End::Closed,
            // Ended already (by a caller, or by `Caller::stop`): its first reason stands,
            // and this one is ignored.
            recv(alive) -> _ => return End::Closed,
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
