//! Parked messages: what a quorum subscription set aside after its delivery limit, put back
//! into the subscriber's queue once the cause is fixed.

use std::time::Duration;

use amiquip::{Confirm, Publish};

use crate::address::{check_queue_name, parked_queue};
use crate::broker::link::Link;
use crate::error::{Error, Result};

/// How long the broker may take to confirm one message put back.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Moves every message of `{subscriber}.parked` back to the queue `subscriber`, one at a
/// time: each is published (through the default exchange, with its properties) and taken
/// out of the parked queue only once the broker has confirmed it, so a failure midway loses
/// nothing (the message being moved may then be in both queues). The number moved.
pub(crate) fn replay(link: &Link, subscriber: &str) -> Result<usize> {
    check_queue_name("subscriber name", subscriber)?;
    let parked = parked_queue(subscriber);
    let (channel, _) = link.open_channel()?;
    // Both must exist: a message published to no queue would be confirmed, and lost.
    for queue in [subscriber, parked.as_str()] {
        channel
            .queue_declare_passive(queue)
            .map_err(|e| Error::broker(format!("look up queue {queue}"), e))?;
    }
    channel
        .enable_publisher_confirms()
        .map_err(|e| Error::broker("enable publisher confirms", e))?;
    let confirms = channel
        .listen_for_publisher_confirms()
        .map_err(|e| Error::broker("listen for publisher confirms", e))?;
    let mut moved = 0;
    while let Some(get) = channel
        .basic_get(parked.as_str(), false)
        .map_err(|e| Error::broker(format!("take a message from {parked}"), e))?
    {
        let delivery = get.delivery;
        let again = Publish::with_properties(
            &delivery.body,
            subscriber.to_owned(),
            delivery.properties.clone(),
        );
        channel
            .basic_publish("", again)
            .map_err(|e| Error::broker(format!("put a message back into {subscriber}"), e))?;
        match confirms.recv_timeout(CONFIRM_TIMEOUT) {
            Ok(Confirm::Ack(_)) => delivery
                .ack(&channel)
                .map_err(|e| Error::broker(format!("take a message out of {parked}"), e))?,
            Ok(Confirm::Nack(_)) => {
                return Err(Error::PublishRejected {
                    reason: format!("the broker refused a message put back into {subscriber}"),
                })
            }
            Err(_) => {
                return Err(Error::ConfirmTimeout {
                    timeout: CONFIRM_TIMEOUT,
                })
            }
        }
        moved += 1;
    }
    let _ = channel.close();
    Ok(moved)
}
