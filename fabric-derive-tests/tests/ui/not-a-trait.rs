use fabric_core::fabric_service;

#[fabric_service]
pub struct Multiplier {
    pub factor: i64,
}

fn main() {
    // The struct is still emitted as written.
    let _ = Multiplier { factor: 2 };
}
