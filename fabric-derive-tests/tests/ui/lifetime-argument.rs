use fabric_core::fabric_service;
use std::borrow::Cow;

#[fabric_service]
pub trait Greeter {
    fn greet(&self, name: Cow<'_, str>) -> String;
}

fn main() {}
