use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    const CAPACITY: usize;
    fn get(&self, key: String) -> String;
}

fn main() {}
