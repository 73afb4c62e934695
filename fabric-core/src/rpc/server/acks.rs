//! How the intake acks the calls its workers answered: several with one `basic.ack`
//! (`multiple`) where their delivery tags run on from the last one acked, the others one by
//! one, at once. Acking a call never waits for a slower call before it: an unacked call
//! counts against the instance's prefetch.

use std::collections::BTreeSet;

use amiquip::{Channel, Delivery};

use crate::error::{Error, Result};

/// The acks of one channel (delivery tags start at 1 on each channel).
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// Every delivery tag up to this one is acked.
    acked_to: u64,
    /// Tags above `acked_to` acked one by one.
    above: BTreeSet<u64>,
}

impl Acks {
    /// Acks `answered`, with as few frames as their tags allow.
    pub(super) fn ack(&mut self, channel: &Channel, mut answered: Vec<Delivery>) -> Result<()> {
        answered.sort_unstable_by_key(Delivery::delivery_tag);
        // The delivery whose tag ends the run from `acked_to`: one `multiple` ack for all.
        let mut run_end: Option<Delivery> = None;
        let mut alone = Vec::new();
        for delivery in answered {
            self.extend_run();
            if delivery.delivery_tag() == self.acked_to + 1 {
                self.acked_to += 1;
                // The one it replaces is covered by the multiple ack.
                run_end = Some(delivery);
            } else {
                alone.push(delivery);
            }
        }
        self.extend_run();
        if let Some(delivery) = run_end {
            delivery.ack_multiple(channel).map_err(failed)?;
        }
        for delivery in alone {
            self.above.insert(delivery.delivery_tag());
            delivery.ack(channel).map_err(failed)?;
        }
        Ok(())
    }

    /// Moves `acked_to` over the tags acked one by one right after it.
    fn extend_run(&mut self) {
        while self.above.remove(&(self.acked_to + 1)) {
            self.acked_to += 1;
        }
    }
}

/// A failed ack: the channel or connection died, and the broker will deliver the calls again.
fn failed(e: amiquip::Error) -> Error {
    let error = Error::broker("ack calls", e);
    log::warn!("fabric: {error}; the broker will deliver the calls again");
    error
}
