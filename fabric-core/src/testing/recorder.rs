//! A publisher that keeps what it publishes: data messages and events, in memory.

use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::address::ServiceAddress;
use crate::broker::publisher::Receipt;
use crate::codec::Codec;
use crate::error::Result;
use crate::rpc::CallContext;
use crate::stream::{data, events, Headers, Message, Publish};

/// A [`Publish`] that keeps every data message and event in memory instead of sending it:
/// give it to the code under test where it takes a publisher, then read what it published.
///
/// Each message is recorded as a subscriber would receive it: the same headers (the
/// caller's, plus the publisher's `service_id` and `service_type`, and `traceparent`), the
/// same content type and body, an event's routing key. An event with an invalid routing key
/// is refused as by a [`Fabric`](crate::Fabric). Every receipt is settled at once. Clones
/// share the record.
///
/// ```
/// use fabric_core::testing::Recorder;
/// use fabric_core::{Headers, Publish};
///
/// fn ship(publisher: &impl Publish, parcel: &str) -> fabric_core::Result<()> {
///     publisher.publish_data(parcel.as_bytes(), &Headers::new().with("msg_type", "PARCEL"))?;
///     publisher.publish_event("parcel.shipped", parcel)?.wait()
/// }
///
/// let recorder = Recorder::for_service("shop", "warehouse", "w1").unwrap();
/// ship(&recorder, "p-17").unwrap();
///
/// let data = recorder.data();
/// assert_eq!(data.len(), 1);
/// assert_eq!(data[0].body(), b"p-17");
/// assert_eq!(data[0].headers().get_str("msg_type"), Some("PARCEL"));
/// assert_eq!(data[0].publisher_id(), Some("w1"));
///
/// let events = recorder.events();
/// assert_eq!(events[0].routing_key(), "parcel.shipped");
/// assert_eq!(events[0].decode::<String>().unwrap(), "p-17");
/// ```
#[derive(Clone)]
pub struct Recorder {
    address: Arc<ServiceAddress>,
    codec: Codec,
    record: Arc<Mutex<Record>>,
}

#[derive(Default)]
struct Record {
    data: Vec<Message>,
    events: Vec<Message>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let record = self.record.lock();
        f.debug_struct("Recorder")
            .field("service", &self.address.fqn())
            .field("codec", &self.codec)
            .field("data", &record.data.len())
            .field("events", &record.events.len())
            .finish()
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder publishing as the service `local.recorder.local`, with bincode, the default
    /// codec of a [`Fabric`](crate::Fabric).
    pub fn new() -> Recorder {
        Recorder::for_service("local", "recorder", "local").expect("a valid address")
    }

    /// A recorder publishing as the service `domain.service_type.service_id`: the
    /// `service_type` and `service_id` headers of what it records. Fails with
    /// [`Error::InvalidName`](crate::Error::InvalidName) as [`FabricConfig`](crate::FabricConfig)'s names would.
    pub fn for_service(domain: &str, service_type: &str, service_id: &str) -> Result<Recorder> {
        Ok(Recorder {
            address: Arc::new(ServiceAddress::new(domain, service_type, service_id)?),
            codec: crate::config::DEFAULT_CODEC,
            record: Arc::default(),
        })
    }

    /// The same recorder (sharing its record) encoding typed publishes with `codec`, as a
    /// fabric configured with it would.
    #[must_use = "with_codec returns a new recorder; the original is unchanged"]
    pub fn with_codec(&self, codec: Codec) -> Recorder {
        Recorder {
            codec,
            ..self.clone()
        }
    }

    /// Every data message published so far, oldest first.
    pub fn data(&self) -> Vec<Message> {
        self.record.lock().data.clone()
    }

    /// Every event published so far, oldest first.
    pub fn events(&self) -> Vec<Message> {
        self.record.lock().events.clone()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut record = self.record.lock();
        record.data.clear();
        record.events.clear();
    }

    fn data_message(&self, body: Vec<u8>, headers: &Headers, content_type: Option<&str>) {
        let trace = CallContext::outgoing_trace();
        let properties = data::properties(&self.address, headers, content_type, &trace);
        let message = Message::published(body, properties, "");
        self.record.lock().data.push(message);
    }
}

impl Publish for Recorder {
    fn publish_data(&self, body: &[u8], headers: &Headers) -> Result<Receipt> {
        self.data_message(body.to_vec(), headers, None);
        Ok(Receipt::settled())
    }

    fn publish_data_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        headers: &Headers,
    ) -> Result<Receipt> {
        let body = self.codec.encode(value, "a data message")?;
        self.data_message(body, headers, Some(self.codec.content_type()));
        Ok(Receipt::settled())
    }

    fn publish_event<T: Serialize + ?Sized>(
        &self,
        routing_key: &str,
        payload: &T,
    ) -> Result<Receipt> {
        events::check_topic(routing_key, false)?;
        let body = self
            .codec
            .encode(payload, format_args!("the event `{routing_key}`"))?;
        let trace = CallContext::outgoing_trace();
        let properties = events::properties(&self.address, self.codec, &trace);
        let message = Message::published(body, properties, routing_key);
        self.record.lock().events.push(message);
        Ok(Receipt::settled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn records_data_and_events_as_a_subscriber_receives_them() {
        let recorder = Recorder::for_service("shop", "till", "t1").unwrap();
        let headers = Headers::new().with("msg_type", "SALE").with("total", 55);
        let _ = recorder.publish_data(b"raw", &headers).unwrap();
        recorder
            .with_codec(Codec::Json)
            .publish_data_value(&[1, 2], &headers)
            .unwrap()
            .wait()
            .unwrap();
        recorder
            .publish_event("sale.made", &7u8)
            .unwrap()
            .wait()
            .unwrap();

        let data = recorder.data();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].body(), b"raw");
        assert_eq!(data[0].content_type(), None);
        assert_eq!(data[0].routing_key(), "");
        assert_eq!(data[0].headers().get_str("msg_type"), Some("SALE"));
        assert_eq!(data[0].headers().get("total"), headers.get("total"));
        assert_eq!(data[0].publisher_id(), Some("t1"));
        assert_eq!(data[0].publisher_type(), Some("till"));
        assert!(data[0].headers().get_str("traceparent").is_some());
        assert_eq!(data[1].content_type(), Some(Codec::Json.content_type()));
        assert_eq!(data[1].decode::<Vec<i32>>().unwrap(), vec![1, 2]);

        let events = recorder.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].routing_key(), "sale.made");
        assert_eq!(events[0].decode::<u8>().unwrap(), 7);
        assert_eq!(events[0].publisher_id(), Some("t1"));
    }

    #[test]
    fn refuses_a_routing_key_a_fabric_refuses() {
        let recorder = Recorder::new();
        let refused = recorder.publish_event("order.*", &1u8);
        assert!(
            matches!(refused, Err(Error::InvalidName { .. })),
            "{refused:?}"
        );
        assert!(recorder.events().is_empty());
    }

    #[test]
    fn clones_share_the_record_and_clear_forgets_it() {
        let recorder = Recorder::new();
        let clone = recorder.clone();
        let _ = clone.publish_event("a.b", &1u8).unwrap();
        assert_eq!(recorder.events().len(), 1);
        recorder.clear();
        assert!(clone.events().is_empty());
    }
}
