use fabric_core::fabric_service;

#[fabric_service]
pub trait Greeter {
    fn names(&self) -> Vec<&'static [u8]>;
}

fn main() {}
