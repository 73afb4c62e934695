use fabric_core::fabric_service;

#[fabric_service]
pub trait Greeter {
    fn names(&self) -> impl Iterator<Item = String>;
}

fn main() {}
