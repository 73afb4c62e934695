use fabric_core::fabric_service;

#[fabric_service]
pub trait Runner {
    fn run(&self, job: Box<dyn Fn() + Send>) -> bool;
}

fn main() {}
