//! What publishing data and events takes, as a trait: code written against it publishes
//! through a [`Fabric`](crate::Fabric) in production and into a
//! [`Recorder`](crate::testing::Recorder) in its tests.

use serde::Serialize;

use super::Headers;
use crate::broker::publisher::Receipt;
use crate::error::Result;

/// Publishing data messages and events: implemented by [`Fabric`](crate::Fabric), and by
/// [`testing::Recorder`](crate::testing::Recorder), which keeps what is published in memory.
///
/// Write code that publishes against `&impl Publish` (or a generic `P: Publish`) and it takes
/// either, unchanged; each method does what the [`Fabric`](crate::Fabric) method of the same
/// name does.
///
/// ```
/// use fabric_core::testing::Recorder;
/// use fabric_core::{Headers, Publish};
///
/// /// The code under test: it publishes, and does not care through what.
/// fn checkout(publisher: &impl Publish, total: u32) -> fabric_core::Result<()> {
///     let headers = Headers::new().with("msg_type", "CUSTOMER_TRANSACTIONS");
///     publisher.publish_data_value(&total, &headers)?.wait()?;
///     publisher.publish_event("order.created", &total)?.wait()
/// }
///
/// // In production: `checkout(&fabric, 55)`. In a test:
/// let recorder = Recorder::new();
/// checkout(&recorder, 55).unwrap();
/// let data = recorder.data();
/// assert_eq!(data[0].headers().get_str("msg_type"), Some("CUSTOMER_TRANSACTIONS"));
/// assert_eq!(data[0].decode::<u32>().unwrap(), 55);
/// assert_eq!(recorder.events()[0].routing_key(), "order.created");
/// ```
pub trait Publish {
    /// Publishes `body` to the domain's data stream with `headers`, to which the publisher's
    /// `service_id` and `service_type` are added. See
    /// [`Fabric::publish_data`](crate::Fabric::publish_data).
    fn publish_data(&self, body: &[u8], headers: &Headers) -> Result<Receipt>;

    /// Publishes `value` to the data stream, encoded with the publisher's codec. See
    /// [`Fabric::publish_data_value`](crate::Fabric::publish_data_value).
    fn publish_data_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        headers: &Headers,
    ) -> Result<Receipt>;

    /// Publishes `payload` as an event with routing key `routing_key`, encoded with the
    /// publisher's codec. See [`Fabric::publish_event`](crate::Fabric::publish_event).
    fn publish_event<T: Serialize + ?Sized>(
        &self,
        routing_key: &str,
        payload: &T,
    ) -> Result<Receipt>;
}
