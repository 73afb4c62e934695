use fabric_core::fabric_service;

#[fabric_service]
pub trait Store
where
    Self: Send,
{
    fn put(&self, value: String);
}

fn main() {}
