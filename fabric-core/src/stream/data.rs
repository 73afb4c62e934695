//! The data stream: `{domain}.data`, a headers exchange, as amqp-fabric's `publish_data`.

use amiquip::{AmqpProperties, AmqpValue, ExchangeType, FieldTable};
use serde::Serialize;

use super::subscriber::{DataStream, Subscriber};
use super::{Headers, Message};
use crate::broker::consumer::Subscription;
use crate::broker::publisher::{Outgoing, Receipt};
use crate::broker::topology::Declaration;
use crate::{Fabric, Result};

pub(super) fn exchange_name(fabric: &Fabric) -> String {
    format!(
        "{}.{}",
        fabric.address().domain(),
        fabric.config().data_exchange
    )
}

/// Durable, as amqp-fabric declares it (a different flag would be refused by the broker).
pub(super) fn exchange_declaration(name: &str) -> Declaration {
    Declaration::Exchange {
        name: name.to_owned(),
        kind: ExchangeType::Headers,
        durable: true,
        auto_delete: false,
    }
}

impl Fabric {
    /// Publishes `body` to the domain's data stream with `headers`, to which the publisher's
    /// `service_id` and `service_type` are added (the caller's `headers` are not changed).
    ///
    /// Returns once the message is on its way; the [`Receipt`] tells when the broker has
    /// taken it. Publishes are confirmed by the broker in a window
    /// ([`FabricConfig::publish_window`](crate::FabricConfig::publish_window)): a publisher
    /// far ahead of the broker blocks here.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// use fabric_core::{Fabric, FabricConfig, Headers};
    ///
    /// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "till", "t1"))?;
    /// let headers = Headers::new().with("msg_type", "CUSTOMER_TRANSACTIONS").with("currency", "USD");
    /// fabric.publish_data(br#"{"order_total": 55}"#, &headers)?.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn publish_data(&self, body: &[u8], headers: &Headers) -> Result<Receipt> {
        self.publish_data_as(body.to_vec(), headers, None)
    }

    /// Publishes `value` encoded with the fabric's codec, named in the message's content
    /// type so that [`Message::decode`] on the other side picks the same codec.
    pub fn publish_data_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        headers: &Headers,
    ) -> Result<Receipt> {
        let codec = self.config().codec;
        let body = codec.encode(value, "a data message")?;
        self.publish_data_as(body, headers, Some(codec.content_type()))
    }

    fn publish_data_as(
        &self,
        body: Vec<u8>,
        headers: &Headers,
        content_type: Option<&str>,
    ) -> Result<Receipt> {
        let properties = || {
            let properties = AmqpProperties::default().with_headers(self.stamped(headers));
            match content_type {
                Some(content_type) => properties.with_content_type(content_type.to_owned()),
                None => properties,
            }
        };
        // The publisher declares the exchange on each connection before its first message.
        self.publisher()?.publish(Outgoing {
            exchange: exchange_name(self),
            declaration: exchange_declaration,
            routing_key: "",
            body,
            properties: &properties,
        })
    }

    /// A subscriber to the domain's data stream, queue `name`: set its header filter and
    /// options, then start it with `handle` or `inbox`.
    ///
    /// ```no_run
    /// # fn main() -> fabric_core::Result<()> {
    /// use fabric_core::{Fabric, FabricConfig};
    ///
    /// let fabric = Fabric::connect(FabricConfig::new("amqp://127.0.0.1", "shop", "books", "b1"))?;
    /// let _subscription = fabric
    ///     .data_subscriber("accountant")
    ///     .header("msg_type", "CUSTOMER_TRANSACTIONS")
    ///     .handle(|message| println!("{} bytes from {:?}", message.body().len(), message.publisher_id()))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn data_subscriber(&self, name: &str) -> Subscriber<DataStream> {
        Subscriber::new(self, name)
    }

    /// amqp-fabric's `subscribe_data`: every message whose headers match all of `headers`
    /// goes to `handler`, on the subscription's own thread.
    pub fn subscribe_data<F>(
        &self,
        name: &str,
        headers: &Headers,
        handler: F,
    ) -> Result<Subscription>
    where
        F: FnMut(Message) + Send + 'static,
    {
        self.data_subscriber(name).headers(headers).handle(handler)
    }

    /// `headers` plus this participant's `service_id` and `service_type`, as AMQP headers.
    pub(super) fn stamped(&self, headers: &Headers) -> FieldTable {
        let mut table = headers.to_table();
        let address = self.address();
        for (name, value) in [
            ("service_id", address.service_id()),
            ("service_type", address.service_type()),
        ] {
            table.insert(name.to_owned(), AmqpValue::LongString(value.to_owned()));
        }
        table
    }
}
