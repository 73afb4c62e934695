//! Tests of the `#[fabric_service]` macro, as serde's `test_suite` is for serde's derives.
//!
//! - `tests/ui/*.rs`: mistakes that must not compile, each with the message the macro gives,
//!   driven by `tests/ui.rs`;
//! - the other files in `tests/`: expansions that must compile, dispatched without a broker;
//! - this library: a documented service under `#![deny(missing_docs)]`, so that a missing doc
//!   on anything generated fails the build, and `cargo doc` checks the generated doc links.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use fabric_core::fabric_service;
use serde::{Deserialize, Serialize};

/// A greeting to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Greeting {
    /// Who is greeted.
    pub to: String,
    /// How loudly.
    pub volume: u8,
}

/// Greets people: a service whose every generated item must be documented.
#[fabric_service]
pub trait Greeter {
    /// Greets `greeting.to`.
    fn greet(&self, greeting: Greeting) -> String;
    /// Forgets everyone.
    fn forget(&self);
    /// How many were greeted.
    fn count(&self) -> u64;
    /// A raw identifier, as the generated doc links must handle it.
    fn r#match(&self, r#ref: String) -> bool;
}
