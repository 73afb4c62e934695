//! Method names that are free to use although something generated has the same name: the
//! server has no method per trait method, and the client's own methods are few.

use fabric_core::{fabric_service, Codec, Dispatch};

#[fabric_service]
pub trait Registry {
    /// `{Trait}Server::new` and `get_ref` are the server's, which has no per-method items.
    #[allow(clippy::new_ret_no_self, clippy::wrong_self_convention)]
    fn new(&self, name: String) -> u64;
    fn get_ref(&self, id: u64) -> Option<String>;
    /// `dispatch` is a method of `Dispatch`, which the server implements; no clash either.
    fn dispatch(&self) -> bool;
    /// `RpcClient::call` belongs to the untyped client, not to `RegistryClient`.
    fn call(&self) -> u8;
    /// Eight arguments: the generated client method allows clippy's `too_many_arguments`.
    #[allow(clippy::too_many_arguments)]
    fn many(&self, a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8) -> u32;
}

struct Names;

impl Registry for Names {
    fn new(&self, name: String) -> u64 {
        name.len() as u64
    }
    fn get_ref(&self, id: u64) -> Option<String> {
        (id == 1).then(|| "one".to_owned())
    }
    fn dispatch(&self) -> bool {
        true
    }
    fn call(&self) -> u8 {
        7
    }
    #[allow(clippy::too_many_arguments)]
    fn many(&self, a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8) -> u32 {
        [a, b, c, d, e, f, g, h].iter().map(|&v| u32::from(v)).sum()
    }
}

#[test]
fn the_server_and_the_client_keep_their_own_methods() {
    let server = RegistryServer { imp: Names };
    assert_eq!(
        server
            .dispatch("new", Codec::Json, br#"{"name":"four"}"#)
            .unwrap()
            .body(),
        b"4"
    );
    assert_eq!(
        server
            .dispatch("get_ref", Codec::Json, br#"{"id":1}"#)
            .unwrap()
            .body(),
        br#""one""#
    );
    assert_eq!(
        server
            .dispatch("dispatch", Codec::Json, b"{}")
            .unwrap()
            .body(),
        b"true"
    );
    assert_eq!(
        server.dispatch("call", Codec::Json, b"{}").unwrap().body(),
        b"7"
    );
    let body = br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}"#;
    assert_eq!(
        server.dispatch("many", Codec::Json, body).unwrap().body(),
        b"36"
    );

    // The generated server methods are still there beside the trait's.
    let _: &Names = server.get_ref();
    let _ = RegistryServer::new(Names);
    let _: fn(&RegistryClient, String) -> fabric_core::Result<u64> = RegistryClient::new;
    let _: fn(&RegistryClient, u64) -> fabric_core::Result<Option<String>> =
        RegistryClient::get_ref;
}
