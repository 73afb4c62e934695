use fabric_core::fabric_service;

#[fabric_service]
pub trait Memory {
    unsafe fn peek(&self, address: usize) -> u8;
}

fn main() {}
