use fabric_core::fabric_service;

#[fabric_service]
pub trait Store {
    fn get_item(&self, key: String) -> String;
    #[allow(non_snake_case)]
    fn getItem(&self, key: u64) -> String;
}

fn main() {}
