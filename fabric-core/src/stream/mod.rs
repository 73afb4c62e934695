//! Data streams and events: publish to an exchange of the domain, subscribe with a queue of
//! your own.
//!
//! Both publish through the fabric's confirming publisher and subscribe through fabric's
//! consumer threads; they differ only in the exchange and how a queue is bound to it: the
//! generic builder is `subscriber.rs`, each kind (`data.rs`, `events.rs`) says how it binds
//! and publishes. The entry points on `Fabric` are in `fabric/streams.rs`.

pub(crate) mod data;
pub(crate) mod events;
mod headers;
mod inbox;
mod message;
pub(crate) mod parked;
mod publish;
mod subscriber;

pub use data::DataStream;
pub use events::Events;
pub use headers::{HeaderValue, Headers};
pub use inbox::Inbox;
pub use message::Message;
pub use publish::Publish;
pub use subscriber::{Subscriber, SubscriberKind};

/// `properties` with the delivery mode the participant publishes data and events in:
/// persistent (2) with [`FabricConfig::persistent_messages`](crate::FabricConfig::persistent_messages),
/// else left transient, as amqp-fabric publishes.
fn with_persistence(
    participant: &crate::participant::Participant,
    properties: amiquip::AmqpProperties,
) -> amiquip::AmqpProperties {
    if participant.config().persistent {
        properties.with_delivery_mode(2)
    } else {
        properties
    }
}
