//! Events between services: `{domain}.events`, a topic exchange, routed by a dotted key.
//!
//! amqp-fabric has only the headers-matched data stream; for events that services react to
//! (`order.created`, `stock.reserved`), topic routing with `*` and `#` wildcards is the
//! better fit, so fabric offers it beside the data stream.

use amiquip::{AmqpProperties, ExchangeType, FieldTable};

use super::headers::stamped;
use super::subscriber::{sealed, Subscriber, SubscriberKind};
use super::Headers;
use crate::address::{ServiceAddress, AMQP_NAME_MAX};
use crate::broker::publisher::{ConfirmingPublisher, Outgoing, Receipt};
use crate::broker::topology::Declaration;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::observe;
use crate::participant::Participant;
use crate::rpc::CallContext;
use crate::trace::TraceContext;

/// The domain's topic exchange: durable, so bindings of durable subscribers outlive a restart.
fn exchange_declaration(name: &str) -> Declaration {
    Declaration::Exchange {
        name: name.to_owned(),
        kind: ExchangeType::Topic,
        durable: true,
        auto_delete: false,
    }
}

/// Checks a routing key (or, with `pattern`, a binding pattern with `*` and `#`).
pub(crate) fn check_topic(topic: &str, pattern: bool) -> Result<()> {
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
    if topic.len() > AMQP_NAME_MAX {
        return Err(invalid(format!("it is longer than {AMQP_NAME_MAX} bytes")));
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

/// The properties of an event encoded with `codec`, sent from the span `trace` by
/// `address`: headers carry the publisher's `service_id` and `service_type`.
pub(crate) fn properties(
    address: &ServiceAddress,
    codec: Codec,
    trace: &TraceContext,
) -> AmqpProperties {
    let mut table = stamped(address, &Headers::new());
    trace.write_to(&mut table);
    AmqpProperties::default()
        .with_content_type(codec.content_type().to_owned())
        .with_headers(table)
}

/// Publishes `body`, encoded with `codec`, as an event with routing key `routing_key`;
/// headers carry the publisher's `service_id` and `service_type`.
pub(crate) fn publish(
    participant: &Participant,
    publisher: &ConfirmingPublisher,
    routing_key: &str,
    body: Vec<u8>,
    codec: Codec,
) -> Result<Receipt> {
    check_topic(routing_key, false)?;
    let trace = CallContext::outgoing_trace();
    let properties = || {
        let properties = self::properties(participant.address(), codec, &trace);
        super::with_persistence(participant, properties)
    };
    // The publisher declares the exchange on each connection before its first message.
    let receipt = publisher.publish(Outgoing {
        exchange: participant.address().events_exchange(),
        declaration: exchange_declaration,
        routing_key,
        body,
        properties: &properties,
    })?;
    observe::published("event");
    Ok(receipt)
}

/// Marks a [`Subscriber`] of events (a topic exchange): the topic patterns it binds.
#[derive(Debug, Default)]
pub struct Events {
    topics: Vec<String>,
}

impl SubscriberKind for Events {}

// Sealed: nobody outside the crate can name the trait or call this.
#[allow(private_interfaces)]
impl sealed::Sealed for Events {
    fn bindings(&self, participant: &Participant, queue: &str) -> Result<Vec<Declaration>> {
        if self.topics.is_empty() {
            return Err(Error::InvalidName {
                kind: "event subscriber",
                name: queue.to_owned(),
                reason: "it has no topic: add one with .topic(\"order.*\")".to_owned(),
            });
        }
        let exchange = participant.address().events_exchange();
        let mut declarations = vec![exchange_declaration(&exchange)];
        for topic in &self.topics {
            check_topic(topic, true)?;
            declarations.push(Declaration::Binding {
                queue: queue.to_owned(),
                exchange: exchange.clone(),
                routing_key: topic.clone(),
                arguments: FieldTable::default(),
            });
        }
        Ok(declarations)
    }
}

impl Subscriber<Events> {
    /// Deliver events whose routing key matches `pattern`: words separated by `.`, where `*`
    /// stands for one word and `#` for zero or more (`order.*`, `user.profile.#`).
    pub fn topic(mut self, pattern: &str) -> Self {
        self.kind.topics.push(pattern.to_owned());
        self
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
