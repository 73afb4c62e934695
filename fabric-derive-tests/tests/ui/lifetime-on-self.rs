use fabric_core::fabric_service;

#[fabric_service]
pub trait Counter {
    fn get(&'static self) -> u64;
}

fn main() {}
