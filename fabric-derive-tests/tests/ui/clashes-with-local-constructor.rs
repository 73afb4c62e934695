use fabric_core::fabric_service;

#[fabric_service]
pub trait Weather {
    /// The generated client already has `local(imp)`, the in-process client for tests.
    fn local(&self, city: String) -> f64;
}

fn main() {}
