use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    #[fabric(idempotent, retries = 3)]
    fn get(&self, key: String) -> Option<String>;
    #[fabric(idempotent)]
    #[fabric(idempotent)]
    fn len(&self) -> u64;
    #[fabric = "idempotent"]
    fn clear(&self);
}

fn main() {}
