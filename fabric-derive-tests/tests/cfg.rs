//! `#[cfg]` on a method reaches everything generated from it: a method that is configured
//! out has no arguments struct, no client method, no dispatch arm and no entry in `METHODS`.

use fabric_core::{fabric_service, Codec, Dispatch, DispatchError};

#[fabric_service]
pub trait Toggles {
    fn always(&self) -> u8;
    /// Configured out: tests are built with `cfg(test)`.
    #[cfg(not(test))]
    fn never(&self, missing: NoSuchType) -> NoSuchType;
    /// Configured in.
    #[cfg(test)]
    fn kept(&self, value: u8) -> u8;
    #[cfg(not(test))]
    fn also_never(&self);
}

struct Impl;

// `never` and `also_never` are configured out of the trait too, so they need no body.
impl Toggles for Impl {
    fn always(&self) -> u8 {
        1
    }
    fn kept(&self, value: u8) -> u8 {
        value * 2
    }
}

fn server() -> TogglesServer<Impl> {
    TogglesServer { imp: Impl }
}

#[test]
fn configured_out_methods_are_not_served() {
    assert_eq!(
        <TogglesServer<Impl> as Dispatch>::METHODS,
        ["always", "kept"]
    );
    for method in ["never", "also_never"] {
        let err = server().dispatch(method, Codec::Json, b"{}").unwrap_err();
        assert_eq!(err, DispatchError::UnknownMethod);
    }
}

#[test]
fn configured_in_methods_are_served() {
    let server = server();
    assert_eq!(
        server
            .dispatch("always", Codec::Json, b"{}")
            .unwrap()
            .body(),
        b"1"
    );
    assert_eq!(
        server
            .dispatch("kept", Codec::Json, br#"{"value":21}"#)
            .unwrap()
            .body(),
        b"42"
    );
    let _: fn(&TogglesClient, u8) -> fabric_core::Result<u8> = TogglesClient::kept;
    let _ = TogglesKeptArgs { value: 1 };
}

/// A trait whose every method is configured out still makes a service, with no methods.
#[fabric_service]
pub trait Empty {
    #[cfg(not(test))]
    fn gone(&self);
}

struct Nothing;
impl Empty for Nothing {}

#[test]
fn a_service_can_be_left_without_methods() {
    assert!(<EmptyServer<Nothing> as Dispatch>::METHODS.is_empty());
    let err = EmptyServer { imp: Nothing }
        .dispatch("gone", Codec::Bincode, &[])
        .unwrap_err();
    assert_eq!(err, DispatchError::UnknownMethod);
}

/// `#[cfg]` on the trait, below the attribute, reaches everything generated.
#[fabric_service]
#[cfg(not(test))]
pub trait Absent {
    fn gone(&self, missing: NoSuchType);
}
