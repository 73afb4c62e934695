use fabric_core::fabric_service;

#[fabric_service]
pub trait Fetcher {
    async fn fetch(&self, url: String) -> Vec<u8>;
}

fn main() {}
