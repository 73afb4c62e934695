//! Mistakes that must not compile, each with the message `#[fabric_service]` gives for it.
//!
//! The `.stderr` files belong to the machine's toolchain; after a change, regenerate them with
//! `TRYBUILD=overwrite cargo test -p fabric-derive-tests --test ui` and read the diff.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
