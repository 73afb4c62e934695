//! The data stream: `{domain}.data`, a headers exchange, as amqp-fabric's `publish_data` and
//! `subscribe_data`.

use amiquip::{AmqpProperties, AmqpValue, ExchangeType, FieldTable};

use super::headers::stamped;
use super::subscriber::{sealed, Subscriber, SubscriberKind};
use super::{HeaderValue, Headers};
use crate::address::ServiceAddress;
use crate::broker::publisher::{ConfirmingPublisher, Outgoing, Receipt};
use crate::broker::topology::Declaration;
use crate::error::Result;
use crate::observe;
use crate::participant::Participant;
use crate::rpc::CallContext;
use crate::trace::TraceContext;

/// The domain's data exchange.
fn exchange(participant: &Participant) -> String {
    participant
        .address()
        .data_exchange(&participant.config().data_exchange)
}

/// Durable, as amqp-fabric declares it (a different flag would be refused by the broker).
fn exchange_declaration(name: &str) -> Declaration {
    Declaration::Exchange {
        name: name.to_owned(),
        kind: ExchangeType::Headers,
        durable: true,
        auto_delete: false,
    }
}

/// The properties of a data message sent from the span `trace` by `address`: `headers` and
/// the publisher's own (`service_id`, `service_type`), and the content type of a typed
/// publish.
pub(crate) fn properties(
    address: &ServiceAddress,
    headers: &Headers,
    content_type: Option<&str>,
    trace: &TraceContext,
) -> AmqpProperties {
    let mut table = stamped(address, headers);
    trace.write_to(&mut table);
    let properties = AmqpProperties::default().with_headers(table);
    match content_type {
        Some(content_type) => properties.with_content_type(content_type.to_owned()),
        None => properties,
    }
}

/// Publishes `body` to the domain's data stream with `headers` and the publisher's own
/// (`service_id`, `service_type`), and the content type of a typed publish.
pub(crate) fn publish(
    participant: &Participant,
    publisher: &ConfirmingPublisher,
    body: Vec<u8>,
    headers: &Headers,
    content_type: Option<&str>,
) -> Result<Receipt> {
    let trace = CallContext::outgoing_trace();
    let properties = || {
        let properties = self::properties(participant.address(), headers, content_type, &trace);
        super::with_persistence(participant, properties)
    };
    // The publisher declares the exchange on each connection before its first message.
    let receipt = publisher.publish(Outgoing {
        exchange: exchange(participant),
        declaration: exchange_declaration,
        routing_key: "",
        body,
        properties: &properties,
    })?;
    observe::published("data");
    Ok(receipt)
}

/// Marks a [`Subscriber`] of the data stream (a headers exchange): the headers it matches.
#[derive(Debug, Default)]
pub struct DataStream {
    headers: Headers,
    match_any: bool,
}

impl SubscriberKind for DataStream {}

// Sealed: nobody outside the crate can name the trait or call this.
#[allow(private_interfaces)]
impl sealed::Sealed for DataStream {
    fn bindings(&self, participant: &Participant, queue: &str) -> Result<Vec<Declaration>> {
        let exchange = exchange(participant);
        let mut arguments: FieldTable = self.headers.to_table();
        let mode = if self.match_any { "any" } else { "all" };
        arguments.insert("x-match".to_owned(), AmqpValue::LongString(mode.to_owned()));
        Ok(vec![
            exchange_declaration(&exchange),
            Declaration::Binding {
                queue: queue.to_owned(),
                exchange,
                routing_key: String::new(),
                arguments,
            },
        ])
    }
}

impl Subscriber<DataStream> {
    /// Deliver only messages with this header (all of them must match, unless
    /// [`match_any`](Self::match_any)).
    pub fn header(mut self, name: &str, value: impl Into<HeaderValue>) -> Self {
        self.kind.headers.insert(name, value);
        self
    }

    /// Deliver only messages with these headers.
    pub fn headers(mut self, headers: &Headers) -> Self {
        for (name, value) in headers.iter() {
            self.kind.headers.insert(name, value.clone());
        }
        self
    }

    /// Deliver messages that match any one of the headers (`x-match=any`) instead of all.
    pub fn match_any(mut self) -> Self {
        self.kind.match_any = true;
        self
    }
}
