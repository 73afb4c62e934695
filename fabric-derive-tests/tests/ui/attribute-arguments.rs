use fabric_core::fabric_service;

#[fabric_service(name = "multiplier")]
pub trait Multiplier {
    fn multiply(&self, x: i64, y: i64) -> i64;
}

fn main() {}
