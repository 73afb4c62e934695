use fabric_core::fabric_service;

#[fabric_service]
pub trait Everything {
    type Item;
    async fn fetch(&mut self, url: &str) -> Vec<u8>;
    fn health_check(self) -> bool;
    fn put<T>(&self, (_key, _value): (String, T)) {}
}

fn main() {}
