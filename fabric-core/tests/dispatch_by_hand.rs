//! The server and client without the macro: a hand-written `Dispatch` and `RpcClient::call`,
//! as a user serving a non-trait API (or calling a Python service) would write them.

mod support;

use fabric_core::{Codec, Dispatch, Error, RpcClient, ServerBuilder};
use serde::{Deserialize, Serialize};

struct Echo;

#[derive(Serialize, Deserialize)]
struct Shout {
    text: String,
}

impl Dispatch for Echo {
    const SERVICE: &'static str = "Echo";
    const METHODS: &'static [&'static str] = &["shout"];

    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> fabric_core::Result<Vec<u8>> {
        match method {
            "shout" => {
                let args: Shout = codec.decode(body, "the arguments of `shout`")?;
                codec.encode(&args.text.to_uppercase(), "the result of `shout`")
            }
            _ => Err(fabric_core::__private::unknown_method(
                Self::SERVICE,
                method,
            )),
        }
    }
}

#[test]
fn hand_written_dispatch_answers_in_both_codecs() {
    let domain = support::unique_domain("by-hand");
    let server_fabric = support::connect(&domain, "echo", "e1");
    let _server = ServerBuilder::new(Echo)
        .workers(2)
        .serve(&server_fabric)
        .unwrap();

    let fabric = support::connect(&domain, "caller", "c1");
    let client = RpcClient::connect(&fabric, &domain, "echo", "e1").unwrap();
    let args = Shout { text: "hi".into() };
    let bincode: String = client.call("shout", &args).unwrap();
    let json: String = client.with_codec(Codec::Json).call("shout", &args).unwrap();
    assert_eq!((bincode.as_str(), json.as_str()), ("HI", "HI"));
    assert!(client.health_check().unwrap());
}

#[test]
fn calls_to_missing_methods_and_services_fail_at_once() {
    let domain = support::unique_domain("missing");
    let server_fabric = support::connect(&domain, "echo", "e1");
    let _server = ServerBuilder::new(Echo)
        .workers(1)
        .serve(&server_fabric)
        .unwrap();
    let fabric = support::connect(&domain, "caller", "c1");

    let client = RpcClient::connect(&fabric, &domain, "echo", "e1").unwrap();
    let err = client
        .call::<_, String>("whisper", &Shout { text: "x".into() })
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownMethod { ref method, .. } if method == "whisper"),
        "{err}"
    );

    let nobody = RpcClient::connect(&fabric, &domain, "echo", "nobody").unwrap();
    let err = nobody
        .call::<_, String>("shout", &Shout { text: "x".into() })
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchService { .. }), "{err}");
}
