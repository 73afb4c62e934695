use fabric_core::fabric_service;

#[fabric_service]
pub trait Merger {
    fn merge(&self, other: Box<Self>) -> u64;
}

fn main() {}
