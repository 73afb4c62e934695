use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    type Value;
    fn get(&self, key: String) -> Self::Value;
}

fn main() {}
