use fabric_core::fabric_service;

#[fabric_service]
pub trait Plotter {
    fn plot(&self, (x, y): (i32, i32), _: bool) -> i32 {
        x + y
    }
}

fn main() {}
