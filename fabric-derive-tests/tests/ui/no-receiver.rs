use fabric_core::fabric_service;

#[fabric_service]
pub trait Counter {
    fn zero(start: u64) -> u64;
}

fn main() {}
