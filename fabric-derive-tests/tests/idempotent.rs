//! `#[fabric(idempotent)]`: accepted on methods, removed from the trait rustc sees, and the
//! client it generates has `with_retry`.

use std::time::Duration;

use fabric_core::{fabric_service, Dispatch, RetryPolicy};

#[fabric_service]
pub trait Store {
    /// Reads a key: running it twice does no harm.
    #[fabric(idempotent)]
    fn get(&self, key: String) -> Option<String>;
    /// Appends: running it twice would append twice, so it is sent once.
    fn append(&self, key: String, value: String);
}

struct Memory;

impl Store for Memory {
    fn get(&self, key: String) -> Option<String> {
        (key == "a").then(|| "1".to_owned())
    }
    fn append(&self, _key: String, _value: String) {}
}

#[test]
fn idempotent_methods_are_ordinary_methods_of_the_trait() {
    // The attribute is gone from the trait, so an implementation needs nothing special.
    assert_eq!(Memory.get("a".into()), Some("1".into()));
    assert_eq!(
        <StoreServer<Memory> as Dispatch>::METHODS,
        ["get", "append"]
    );
}

#[test]
fn the_client_takes_a_retry_policy() {
    // Type-checks the generated `with_retry`; calls need a broker and are tested in fabric-core.
    fn configure(client: &StoreClient) -> StoreClient {
        client.with_retry(RetryPolicy::new(5, Duration::from_millis(50)))
    }
    let _ = configure;
}
