use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    fn get(&self, key: String) -> String;
    fn get(&self, key: u64) -> String;
}

fn main() {}
