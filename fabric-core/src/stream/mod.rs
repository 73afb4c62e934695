//! Data streams and events: publish to an exchange of the domain, subscribe with a queue of
//! your own.
//!
//! Both publish through the fabric's confirming publisher and subscribe through fabric's
//! consumer threads; they differ only in the exchange and how a queue is bound to it.

mod data;
mod events;
mod headers;
mod message;
mod subscriber;

pub use headers::{HeaderValue, Headers};
pub use message::Message;
pub use subscriber::{DataStream, Events, Inbox, Subscriber, SubscriberKind};
