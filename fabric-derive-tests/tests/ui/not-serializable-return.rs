use fabric_core::fabric_service;

pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[fabric_service]
pub trait Plotter {
    fn origin(&self) -> Point;
}

fn main() {}
