//! Services in modules, used from outside; two services in one module; a private service.

use fabric_core::{Codec, Dispatch};

mod services {
    pub mod math {
        use fabric_core::fabric_service;

        #[fabric_service]
        pub trait Adder {
            fn add(&self, a: i32, b: i32) -> i32;
        }

        #[fabric_service]
        pub trait Negator {
            fn negate(&self, a: i32) -> i32;
        }

        pub struct Calc;

        impl Adder for Calc {
            fn add(&self, a: i32, b: i32) -> i32 {
                a + b
            }
        }

        impl Negator for Calc {
            fn negate(&self, a: i32) -> i32 {
                -a
            }
        }

        /// The servers' fields are private to this module, like the trait's own items.
        pub fn servers() -> (AdderServer<Calc>, NegatorServer<Calc>) {
            (AdderServer { imp: Calc }, NegatorServer { imp: Calc })
        }
    }
}

use services::math::{self, AdderClient, AdderServer, NegatorClient, NegatorServer};

#[test]
fn a_service_in_a_module_is_used_from_outside() {
    let (adder, negator) = math::servers();
    let body = Codec::Json
        .encode(&math::AdderAddArgs { a: 2, b: 3 }, "args")
        .unwrap();
    assert_eq!(
        adder.dispatch("add", Codec::Json, &body).unwrap().body(),
        b"5"
    );
    let body = Codec::Json
        .encode(&math::NegatorNegateArgs { a: 2 }, "args")
        .unwrap();
    assert_eq!(
        negator
            .dispatch("negate", Codec::Json, &body)
            .unwrap()
            .body(),
        b"-2"
    );

    let _: fn(&AdderClient, i32, i32) -> fabric_core::Result<i32> = AdderClient::add;
    let _: fn(&NegatorClient, i32) -> fabric_core::Result<i32> = NegatorClient::negate;
    let _ = AdderServer::new(math::Calc);
    let _ = NegatorServer::new(math::Calc);
}

#[test]
fn two_services_in_one_module_keep_apart() {
    assert_eq!(<AdderServer<math::Calc> as Dispatch>::SERVICE, "Adder");
    assert_eq!(<AdderServer<math::Calc> as Dispatch>::METHODS, ["add"]);
    assert_eq!(<NegatorServer<math::Calc> as Dispatch>::SERVICE, "Negator");
    assert_eq!(<NegatorServer<math::Calc> as Dispatch>::METHODS, ["negate"]);
}

mod private {
    use fabric_core::{fabric_service, Codec, Dispatch};

    // Everything generated is as private as the trait.
    #[fabric_service]
    trait Secret {
        fn whisper(&self, word: String) -> String;
    }

    struct Quiet;

    impl Secret for Quiet {
        fn whisper(&self, word: String) -> String {
            word.to_lowercase()
        }
    }

    #[test]
    fn a_private_service_works_in_its_module() {
        let server = SecretServer { imp: Quiet };
        let reply = server
            .dispatch("whisper", Codec::Json, br#"{"word":"HUSH"}"#)
            .unwrap();
        assert_eq!(reply.body(), br#""hush""#);
        let _: fn(&SecretClient, String) -> fabric_core::Result<String> = SecretClient::whisper;
        let _ = SecretWhisperArgs {
            word: String::new(),
        };
    }
}
