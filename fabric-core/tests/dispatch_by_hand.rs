//! The server and client without the macro: a hand-written `Dispatch` and `RpcClient::call`,
//! as a user serving a non-trait API (or calling a Python service) would write them.

mod support;

use fabric_core::{
    decode_args, Codec, Dispatch, DispatchError, Error, Reply, RpcClient, ServerBuilder,
};
use serde::{Deserialize, Serialize};

struct Echo;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shout {
    text: String,
}

/// The error of `shout`, named `Silence` on the wire.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Silence {
    length: usize,
}

impl Dispatch for Echo {
    const SERVICE: &'static str = "Echo";
    const METHODS: &'static [&'static str] = &["shout"];

    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> Result<Reply, DispatchError> {
        match method {
            "shout" => {
                let args: Shout = decode_args(codec, body, "shout", &["text"])?;
                if args.text.is_empty() {
                    return Reply::error(codec, &Silence { length: 0 }, "nothing to shout");
                }
                Reply::value(codec, &args.text.to_uppercase())
            }
            _ => Err(DispatchError::UnknownMethod),
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

    for codec in [Codec::Bincode, Codec::Json] {
        let client = client.with_codec(codec);
        let shouted: Result<String, Silence> = client.call_fallible("shout", &args).unwrap();
        assert_eq!(shouted.as_deref(), Ok("HI"), "{codec:?}");
        let silent: Result<String, Silence> = client
            .call_fallible("shout", &Shout { text: "".into() })
            .unwrap();
        assert_eq!(silent, Err(Silence { length: 0 }), "{codec:?}");
        // Called as a plain method, the service's error is a remote error named after it.
        let err = client
            .call::<_, String>("shout", &Shout { text: "".into() })
            .unwrap_err();
        assert!(
            matches!(&err, Error::Remote { kind, message, .. } if kind == "Silence" && message == "nothing to shout"),
            "{codec:?}: {err:?}"
        );
    }
    // A keyword argument the method does not take, as a Python caller might send it.
    let err = client
        .with_codec(Codec::Json)
        .call::<_, String>("shout", &serde_json::json!({"txt": "x"}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadArguments { message, .. } if message == "shout() got an unexpected keyword argument 'txt'"),
        "{err:?}"
    );
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
