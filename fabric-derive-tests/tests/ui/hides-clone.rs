use fabric_core::fabric_service;

#[fabric_service]
pub trait Repository {
    fn clone(&self, url: String) -> bool;
}

fn main() {}
