use fabric_core::fabric_service;

#[fabric_service]
pub trait Network {
    fn connect(&self, host: String) -> bool;
    fn with_timeout(&self, seconds: u64);
}

fn main() {}
