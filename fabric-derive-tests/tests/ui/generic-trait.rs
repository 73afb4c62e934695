use fabric_core::fabric_service;

#[fabric_service]
pub trait Store<T> {
    fn put(&self, value: T);
}

fn main() {}
