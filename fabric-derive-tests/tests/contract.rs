//! The contract `#[fabric_service]` generates: every method's name, parameters and types as
//! written, return type, doc and marks, the same on the client, the server and `Dispatch`.

use fabric_core::{fabric_service, Contract, Dispatch};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct DivError(String);

#[fabric_service]
pub trait Calc {
    /// Multiplies two numbers.
    ///
    /// Wraps on overflow.
    #[fabric(idempotent)]
    fn multiply(&self, x: i64, y: i64) -> i64;

    /// Divides, refusing zero.
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;

    fn tag(&self, r#type: String, values: Vec<Option<u8>>);

    #[cfg(any())]
    fn hidden(&self) -> u8;
}

struct Impl;

impl Calc for Impl {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x * y
    }
    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        x.checked_div(y).ok_or_else(|| DivError("zero".into()))
    }
    fn tag(&self, _: String, _: Vec<Option<u8>>) {}
}

#[test]
fn describes_every_method_as_written() {
    let contract = CalcClient::contract();
    assert_eq!(contract.service(), "Calc");
    let signatures: Vec<String> = contract.methods().iter().map(|m| m.to_string()).collect();
    assert_eq!(
        signatures,
        [
            "multiply(x: i64, y: i64) -> i64",
            "divide(x: i64, y: i64) -> Result<i64, DivError>",
            "tag(type: String, values: Vec<Option<u8>>)",
        ],
        "the #[cfg]'d-out method is left out, raw names lose `r#`"
    );
    let multiply = contract.find("multiply").unwrap();
    assert_eq!(
        multiply.doc_text(),
        "Multiplies two numbers.\n\nWraps on overflow."
    );
    assert_eq!(multiply.summary(), "Multiplies two numbers.");
    assert!(multiply.is_idempotent() && !multiply.is_fallible());
    let divide = contract.find("divide").unwrap();
    assert!(divide.is_fallible() && !divide.is_idempotent());
    assert_eq!(divide.params()[1].name(), "y");
    assert_eq!(divide.params()[1].type_name(), "i64");
    let tag = contract.find("tag").unwrap();
    assert_eq!((tag.return_type(), tag.doc_text()), ("()", ""));
}

#[test]
fn the_server_and_dispatch_announce_the_same_contract() {
    let contract = CalcClient::contract();
    assert_eq!(CalcServer::<Impl>::contract(), contract);
    assert_eq!(
        <CalcServer<Impl> as Dispatch>::contract(),
        Some(contract.clone())
    );
    let builder = CalcServer::new(Impl);
    assert_eq!(builder.dispatcher().get_ref().multiply(2, 3), 6);
    // Stable: the hash is over the canonical text, pinned here.
    assert_eq!(
        contract.canonical(),
        "fabric-contract 1\n\
         divide(x: i64, y: i64) -> Result<i64, DivError>\n\
         multiply(x: i64, y: i64) -> i64 idempotent\n\
         tag(type: String, values: Vec<Option<u8>>)\n"
    );
    assert_eq!(contract.hash(), CalcClient::contract().hash());
}

#[test]
fn a_client_with_other_parameter_names_differs() {
    #[allow(dead_code)]
    mod other {
        #[fabric_core::fabric_service]
        pub trait Calc {
            fn multiply(&self, x: i64, y: i64) -> i64;
            fn divide(&self, a: i64, b: i64) -> i64;
        }
    }
    let here: Contract = other::CalcClient::contract();
    let there = CalcClient::contract();
    assert_eq!(
        here.difference(&there).unwrap(),
        "method `divide` takes (x: i64, y: i64) there, (a: i64, b: i64) here"
    );
    assert_ne!(here.hash(), there.hash());
}
