use fabric_core::fabric_service;

macro_rules! getter {
    ($name:ident) => {
        fn $name(&self) -> String;
    };
}

#[fabric_service]
pub trait Store {
    getter!(name);
}

fn main() {}
