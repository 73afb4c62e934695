use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    fn put<V: serde::Serialize>(&self, key: String, value: V);
}

fn main() {}
