use fabric_core::fabric_service;

#[fabric_service]
pub trait Greeter {
    fn greet(&self, name: impl Into<String>) -> String;
}

fn main() {}
