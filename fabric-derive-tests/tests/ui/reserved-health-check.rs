use fabric_core::fabric_service;

#[fabric_service]
pub trait Monitor {
    fn health_check(&self) -> bool;
}

fn main() {}
