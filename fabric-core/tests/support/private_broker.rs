//! The private RabbitMQ node of fault tests: `fabric_core::testing::TestBroker`, the same
//! that users get, under the name these tests have always used for it, so the whole suite
//! exercises it.
#![allow(unused_imports)]

pub use fabric_core::testing::{scratch_dir, TestBroker as PrivateBroker, TlsListener};
