//! Events between services: `{domain}.events`, a topic exchange, routed by a dotted key.
//!
//! amqp-fabric has only the headers-matched data stream; for events that services react to
//! (`order.created`, `stock.reserved`), topic routing with `*` and `#` wildcards is the
//! better fit, so fabric offers it beside the data stream.

use amiquip::{AmqpProperties, ExchangeType};
use serde::Serialize;

use super::subscriber::{Events, Subscriber};
use super::{Headers, Message};
use crate::broker::consumer::Subscription;
use crate::broker::publisher::{Outgoing, Receipt};
use crate::broker::topology::Declaration;
use crate::{Error, Fabric, Result};

pub(super) fn exchange_name(fabric: &Fabric) -> String {
    format!("{}.events", fabric.address().domain())
}

pub(super) fn exchange_declaration(name: &str) -> Declaration {
    Declaration::Exchange {
        name: name.to_owned(),
        kind: ExchangeType::Topic,
        durable: true,
        auto_delete: false,
    }
}

/// Checks a routing key (or, with `pattern`, a binding pattern with `*` and `#`).
pub(super) fn check_topic(topic: &str, pattern: bool) -> Result<()> {
    let kind = if pattern {
        "topic pattern"
    } else {
        "routing key"
    };
    let invalid = |reason: String| Error::InvalidName {
        kind,
        name: topic.to_owned(),
        reason,
    };
    if topic.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    if topic.len() > 255 {
        return Err(invalid("it is longer than 255 bytes".to_owned()));
    }
    for word in topic.split('.') {
        if word.is_empty() {
            return Err(invalid(
                "it has an empty word (a leading, trailing or doubled `.`)".to_owned(),
            ));
        }
        let wildcard = word.contains('*') || word.contains('#');
        if wildcard && !pattern {
            return Err(invalid(format!(
                "`{word}`: wildcards belong in subscriptions, not in a published routing key"
            )));
        }
        if wildcard && word != "*" && word != "#" {
            return Err(invalid(format!(
                "`{word}`: `*` and `#` must stand alone as a whole word"
            )));
        }
    }
    Ok(())
}

impl Fabric {
    /// Publishes `payload` as an event with routing key `routing_key` (`order.created`),
    /// encoded with the fabric's codec. Headers carry the publisher's `service_id` and
    /// `service_type`. Confirmed like [`publish_data`](Self::publish_data).
    pub fn publish_event<T: Serialize + ?Sized>(
        &self,
        routing_key: &str,
        payload: &T,
    ) -> Result<Receipt> {
        check_topic(routing_key, false)?;
        let codec = self.config().codec;
        let body = codec.encode(payload, format_args!("the event `{routing_key}`"))?;
        let properties = || {
            AmqpProperties::default()
                .with_content_type(codec.content_type().to_owned())
                .with_headers(self.stamped(&Headers::new()))
        };
        // The publisher declares the exchange on each connection before its first message.
        self.publisher()?.publish(Outgoing {
            exchange: exchange_name(self),
            declaration: exchange_declaration,
            routing_key,
            body,
            properties: &properties,
        })
    }

    /// A subscriber to the domain's events, queue `name`: add topics with `.topic(..)`, then
    /// start it with `handle` or `inbox`.
    pub fn event_subscriber(&self, name: &str) -> Subscriber<Events> {
        Subscriber::new(self, name)
    }

    /// Every event whose routing key matches `pattern` goes to `handler`, on the
    /// subscription's own thread.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// use fabric_core::{Fabric, FabricConfig};
    ///
    /// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "mailer", "m1"))?;
    /// let _subscription = fabric.subscribe_events("mailer", "user.profile.*", |event| {
    ///     println!("{}: {} bytes", event.routing_key(), event.body().len());
    /// })?;
    /// fabric.publish_event("user.profile.updated", &"alice")?.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_events<F>(&self, name: &str, pattern: &str, handler: F) -> Result<Subscription>
    where
        F: FnMut(Message) + Send + 'static,
    {
        self.event_subscriber(name).topic(pattern).handle(handler)
    }
}

#[cfg(test)]
mod tests {
    use super::check_topic;

    #[test]
    fn topics_and_patterns_are_checked() {
        check_topic("order.created", false).unwrap();
        check_topic("user.profile.*", true).unwrap();
        check_topic("#", true).unwrap();
        assert!(check_topic("user.*", false).is_err());
        assert!(check_topic("user..x", true).is_err());
        assert!(check_topic("user.pro*", true).is_err());
        assert!(check_topic("", true).is_err());
    }
}
