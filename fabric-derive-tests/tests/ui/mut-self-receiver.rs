use fabric_core::fabric_service;

#[fabric_service]
pub trait Counter {
    fn increment(&mut self) -> u64;
}

// The trait is still emitted as written, so this impl adds no errors of its own.
struct Tally(u64);

impl Counter for Tally {
    fn increment(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

fn main() {
    let mut tally = Tally(0);
    tally.increment();
}
