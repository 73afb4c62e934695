use fabric_core::{fabric_service, Bytes};

#[fabric_service]
pub trait Store {
    fn put(&self, key: String, value: Bytes, tags: Vec<String>);
}

// Lent forms of other types: a key of bytes, a value of text, tags as one string.
fn call(client: &StoreClient, key: &[u8], value: &str, tags: &String) {
    let _ = client.put(key, value, tags);
}

fn main() {}
