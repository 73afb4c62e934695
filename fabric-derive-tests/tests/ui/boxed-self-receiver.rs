use fabric_core::fabric_service;

#[fabric_service]
pub trait Counter {
    fn finish(self: Box<Self>) -> u64;
}

fn main() {}
