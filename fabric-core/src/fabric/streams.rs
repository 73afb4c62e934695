//! The entry points of data streams and events: publishing, and subscribers.

use serde::Serialize;

use super::Fabric;
use crate::broker::consumer::Subscription;
use crate::broker::publisher::Receipt;
use crate::error::Result;
use crate::stream::{
    data, events, parked, DataStream, Events, Headers, Message, Publish, Subscriber,
};

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
        let publisher = self.publisher()?;
        data::publish(
            &self.participant(),
            &publisher,
            body.to_vec(),
            headers,
            None,
        )
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
        let publisher = self.publisher()?;
        let content_type = Some(codec.content_type());
        data::publish(&self.participant(), &publisher, body, headers, content_type)
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
        Subscriber::new(self.participant(), name)
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

    /// Publishes `payload` as an event with routing key `routing_key` (`order.created`),
    /// encoded with the fabric's codec. Headers carry the publisher's `service_id` and
    /// `service_type`. Confirmed like [`publish_data`](Self::publish_data).
    pub fn publish_event<T: Serialize + ?Sized>(
        &self,
        routing_key: &str,
        payload: &T,
    ) -> Result<Receipt> {
        let codec = self.config().codec;
        let body = codec.encode(payload, format_args!("the event `{routing_key}`"))?;
        let publisher = self.publisher()?;
        events::publish(&self.participant(), &publisher, routing_key, body, codec)
    }

    /// A subscriber to the domain's events, queue `name`: add topics with `.topic(..)`, then
    /// start it with `handle` or `inbox`.
    pub fn event_subscriber(&self, name: &str) -> Subscriber<Events> {
        Subscriber::new(self.participant(), name)
    }

    /// Puts the messages a [`quorum`](Subscriber::quorum) subscription `name` parked (in
    /// `{name}.parked`, after its delivery limit) back into its queue, to be delivered again
    /// with a fresh delivery count; returns how many. Each message leaves the parked queue
    /// only once the broker has confirmed it in the subscriber's queue. Run it once the
    /// cause of the failures is fixed.
    ///
    /// ```no_run
    /// # fn demo(fabric: &fabric_core::Fabric) -> fabric_core::Result<()> {
    /// let moved = fabric.replay_parked("inventory")?;
    /// println!("{moved} messages go to inventory again");
    /// # Ok(())
    /// # }
    /// ```
    pub fn replay_parked(&self, name: &str) -> Result<usize> {
        parked::replay(self.participant().link(), name)
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

impl Publish for Fabric {
    fn publish_data(&self, body: &[u8], headers: &Headers) -> Result<Receipt> {
        Fabric::publish_data(self, body, headers)
    }

    fn publish_data_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        headers: &Headers,
    ) -> Result<Receipt> {
        Fabric::publish_data_value(self, value, headers)
    }

    fn publish_event<T: Serialize + ?Sized>(
        &self,
        routing_key: &str,
        payload: &T,
    ) -> Result<Receipt> {
        Fabric::publish_event(self, routing_key, payload)
    }
}
