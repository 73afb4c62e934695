use fabric_core::fabric_service;

pub trait Multiplier {
    fn multiply(&self, x: i64, y: i64) -> i64;
}

struct Calc;

#[fabric_service]
impl Multiplier for Calc {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
}

fn main() {}
