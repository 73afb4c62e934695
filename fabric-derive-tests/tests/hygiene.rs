//! The expansion names everything by absolute path: it compiles without the prelude, beside
//! items named like the ones it uses, and without `serde` in scope.

#![no_implicit_prelude]

#[allow(dead_code, non_camel_case_types)]
mod traps {
    // Names the expansion must not pick up by accident. (Not primitive names such as `str`:
    // serde_derive's output, which the args structs use, writes those bare.)
    pub struct Result;
    pub struct Option;
    pub struct Vec;
    pub struct String;
    pub struct Send;
    pub struct Sync;
    pub struct T;
    pub trait Serialize {}
    pub trait Deserialize {}
    pub trait Clone {}
    pub trait Debug {}
    pub mod serde {}
    pub mod core {}
    pub mod std {}
}

mod service {
    #[allow(unused_imports)]
    use super::traps::*;

    #[::fabric_core::fabric_service]
    pub trait Clean {
        /// Echoes.
        fn echo(&self, text: ::std::string::String) -> ::std::string::String;
        fn nothing(&self);
        fn count(
            &self,
            items: ::std::vec::Vec<::core::primitive::u8>,
            // Argument names that are also names in the generated dispatch.
            codec: ::core::primitive::u8,
            body: ::core::primitive::u8,
            method: ::core::primitive::u8,
            result: ::core::primitive::u8,
        ) -> ::core::option::Option<::core::primitive::usize>;
    }

    pub struct Impl;

    impl Clean for Impl {
        fn echo(&self, text: ::std::string::String) -> ::std::string::String {
            text
        }
        fn nothing(&self) {}
        fn count(
            &self,
            items: ::std::vec::Vec<::core::primitive::u8>,
            codec: ::core::primitive::u8,
            body: ::core::primitive::u8,
            method: ::core::primitive::u8,
            result: ::core::primitive::u8,
        ) -> ::core::option::Option<::core::primitive::usize> {
            ::core::option::Option::Some(
                items.len() + (codec + body + method + result) as ::core::primitive::usize,
            )
        }
    }

    pub fn server() -> CleanServer<Impl> {
        CleanServer { imp: Impl }
    }
}

#[test]
fn compiles_and_dispatches_without_the_prelude() {
    use ::fabric_core::Dispatch;
    let server = service::server();
    let reply = server
        .dispatch("echo", ::fabric_core::Codec::Json, br#"{"text":"hi"}"#)
        .unwrap();
    ::std::assert_eq!(reply.body(), br#""hi""#);
    let body = br#"{"items":[1,2],"codec":1,"body":1,"method":1,"result":1}"#;
    let reply = server
        .dispatch("count", ::fabric_core::Codec::Json, body)
        .unwrap();
    ::std::assert_eq!(reply.body(), b"6");
    ::std::assert_eq!(
        <service::CleanServer<service::Impl> as Dispatch>::METHODS,
        ["echo", "nothing", "count"]
    );
}

#[test]
fn a_client_lends_its_arguments_without_the_prelude() {
    let client = service::CleanClient::local(service::Impl);
    // A `&str` for a `String`, and a slice for a `Vec`, next to literals of the `u8`s written
    // as paths (lent like any type that is not a bare scalar name).
    ::std::assert_eq!(client.echo("hi").unwrap(), "hi");
    let items: &[::core::primitive::u8] = &[1, 2];
    ::std::assert_eq!(
        client.count(items, 1, 1, 1, 1).unwrap(),
        ::core::option::Option::Some(6)
    );
}
