use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    fn first<'a>(&self, keys: Vec<String>) -> Option<String>;
}

fn main() {}
