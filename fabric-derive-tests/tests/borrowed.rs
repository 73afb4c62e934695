//! A generated client takes every argument that is not a primitive scalar as declared or lent
//! (`impl fabric_core::Arg<T>`), and sends the same call whichever form it is given, in both
//! codecs: the body is byte for byte the encoding of the owned `{Trait}{Method}Args`.

use std::sync::{Arc, Mutex};

use fabric_core::{
    fabric_service, Bytes, Codec, Dispatch, DispatchError, Reply, RetryPolicy, RpcClient,
    ServerBuilder,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Missing;

pub type Id = u64;

#[fabric_service]
pub trait Store {
    fn put(&self, key: String, value: Bytes, tags: Vec<String>, ttl_s: u32) -> usize;
    fn moved(&self, by: Point, note: Option<String>) -> Point;
    fn scale(&self, factor: f64, times: i64, negate: bool, mark: char) -> f64;
    fn sum(&self, xs: Vec<i64>, id: Id, pair: (i64, u8)) -> i64;
    #[fabric(idempotent)]
    fn get(&self, key: String) -> Result<Bytes, Missing>;
    fn nothing(&self) -> bool;
    fn r#type(&self, r#in: String) -> String;
}

struct Impl;

impl Store for Impl {
    fn put(&self, key: String, value: Bytes, tags: Vec<String>, ttl_s: u32) -> usize {
        key.len() + value.len() + tags.len() + ttl_s as usize
    }
    fn moved(&self, by: Point, note: Option<String>) -> Point {
        let shift = note.map_or(0, |note| note.len() as i32);
        Point {
            x: by.x + shift,
            y: by.y,
        }
    }
    fn scale(&self, factor: f64, times: i64, negate: bool, mark: char) -> f64 {
        let value = factor * times as f64 + f64::from(u32::from(mark));
        if negate {
            -value
        } else {
            value
        }
    }
    fn sum(&self, xs: Vec<i64>, id: Id, pair: (i64, u8)) -> i64 {
        xs.iter().sum::<i64>() + id as i64 + pair.0 + i64::from(pair.1)
    }
    fn get(&self, key: String) -> Result<Bytes, Missing> {
        if key == "k" {
            Ok(Bytes(b"v".to_vec()))
        } else {
            Err(Missing)
        }
    }
    fn nothing(&self) -> bool {
        true
    }
    fn r#type(&self, r#in: String) -> String {
        r#in.to_uppercase()
    }
}

/// The generated dispatcher, keeping every call's body.
struct Recording {
    server: ServerBuilder<StoreServer<Impl>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Dispatch for Recording {
    const SERVICE: &'static str = "Store";
    const METHODS: &'static [&'static str] = <StoreServer<Impl> as Dispatch>::METHODS;

    fn dispatch(&self, method: &str, codec: Codec, body: &[u8]) -> Result<Reply, DispatchError> {
        self.bodies.lock().unwrap().push(body.to_vec());
        self.server.dispatcher().dispatch(method, codec, body)
    }
}

/// A local client of `Impl` in `codec`, and the bodies of its calls.
fn recorded(codec: Codec) -> (StoreClient, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording {
        server: StoreServer::new(Impl),
        bodies: Arc::clone(&bodies),
    };
    let client = StoreClient::from_rpc(RpcClient::local(recording).with_codec(codec));
    (client, bodies)
}

/// The body of the last call, which must be the encoding of `owned`.
fn assert_sent<A: Serialize>(codec: Codec, bodies: &Mutex<Vec<Vec<u8>>>, owned: &A) {
    let last = bodies.lock().unwrap().pop().expect("a call was made");
    assert_eq!(last, codec.encode(owned, "the owned arguments").unwrap());
}

#[test]
// The borrows are the point: each form must compile and send the same call.
#[allow(clippy::needless_borrows_for_generic_args)]
fn owned_and_lent_arguments_send_the_same_call() {
    for codec in [Codec::Bincode, Codec::Json] {
        let (client, bodies) = recorded(codec);
        let key = "key".to_owned();
        let blob: Vec<u8> = (0..=255).collect();
        let value = Bytes(blob.clone());
        let tags = vec!["a".to_owned(), "b".to_owned()];
        let put = StorePutArgs {
            key: key.clone(),
            value: value.clone(),
            tags: tags.clone(),
            ttl_s: 60,
        };
        // Owned, as declared: as before.
        assert_eq!(
            client
                .put(key.clone(), value.clone(), tags.clone(), 60)
                .unwrap(),
            321
        );
        assert_sent(codec, &bodies, &put);
        // Lent, nothing cloned.
        assert_eq!(client.put(&key, &value, &tags, 60).unwrap(), 321);
        assert_sent(codec, &bodies, &put);
        // Borrowed forms: `&str`, `&[u8]`, `&[T]`.
        assert_eq!(
            client.put(key.as_str(), &blob[..], &tags[..], 60).unwrap(),
            321
        );
        assert_sent(codec, &bodies, &put);
        // An array, a `&Vec<u8>` and a `Vec<u8>` for `Bytes`.
        let put_small = StorePutArgs {
            key: "k".to_owned(),
            value: Bytes(vec![1, 2, 3]),
            tags: vec!["t".to_owned()],
            ttl_s: 1,
        };
        let tag = ["t".to_owned()];
        assert_eq!(client.put("k", &[1, 2, 3], &tag, 1).unwrap(), 6);
        assert_sent(codec, &bodies, &put_small);
        assert_eq!(client.put("k", &vec![1, 2, 3], &tag, 1).unwrap(), 6);
        assert_sent(codec, &bodies, &put_small);
        assert_eq!(client.put("k", vec![1, 2, 3], &tag, 1).unwrap(), 6);
        assert_sent(codec, &bodies, &put_small);
    }
}

#[test]
// The borrows are the point: each form must compile and send the same call.
#[allow(clippy::needless_borrows_for_generic_args)]
fn structs_options_tuples_and_aliases_lend_too() {
    for codec in [Codec::Bincode, Codec::Json] {
        let (client, bodies) = recorded(codec);
        let by = Point { x: 1, y: 2 };
        let moved = StoreMovedArgs {
            by: by.clone(),
            note: Some("four".to_owned()),
        };
        let expected = Point { x: 5, y: 2 };
        assert_eq!(client.moved(&by, Some("four".into())).unwrap(), expected);
        assert_sent(codec, &bodies, &moved);
        assert_eq!(
            client.moved(by.clone(), &Some("four".to_owned())).unwrap(),
            expected
        );
        assert_sent(codec, &bodies, &moved);
        assert_eq!(client.moved(&by, None).unwrap(), by);

        // Literals still take the declared type, through the parameter or through `Arg`.
        let sum = StoreSumArgs {
            xs: vec![1, 2, 3],
            id: 4,
            pair: (5, 6),
        };
        assert_eq!(client.sum(vec![1, 2, 3], 4, (5, 6)).unwrap(), 21);
        assert_sent(codec, &bodies, &sum);
        assert_eq!(client.sum(&[1, 2, 3], &4, &(5, 6)).unwrap(), 21);
        assert_sent(codec, &bodies, &sum);
        let xs: Vec<i64> = (1..=3).collect();
        assert_eq!(client.sum(&xs, 4, (5, 6)).unwrap(), 21);
        assert_sent(codec, &bodies, &sum);
    }
}

#[test]
fn scalars_are_taken_as_declared() {
    let (client, bodies) = recorded(Codec::Bincode);
    let times: i32 = 3;
    // Integer and float literals, and expressions typed by the parameter alone.
    assert_eq!(client.scale(2.0, 3, false, '\0').unwrap(), 6.0);
    assert_eq!(
        client
            .scale(Default::default(), times.into(), true, 'a')
            .unwrap(),
        -97.0
    );
    let scale = StoreScaleArgs {
        factor: 0.0,
        times: 3,
        negate: true,
        mark: 'a',
    };
    assert_sent(Codec::Bincode, &bodies, &scale);
}

#[test]
fn fallible_idempotent_methods_lend_too() {
    for codec in [Codec::Bincode, Codec::Json] {
        let (client, bodies) = recorded(codec);
        let client = client.with_retry(RetryPolicy::default());
        let key = "k".to_owned();
        assert_eq!(client.get(&key).unwrap(), Ok(Bytes(b"v".to_vec())));
        assert_sent(codec, &bodies, &StoreGetArgs { key });
        assert_eq!(client.get("other").unwrap(), Err(Missing));
        assert!(client.nothing().unwrap());
        assert_sent(codec, &bodies, &StoreNothingArgs {});
        assert_eq!(client.r#type("in").unwrap(), "IN");
        assert_sent(
            codec,
            &bodies,
            &StoreTypeArgs {
                r#in: "in".to_owned(),
            },
        );
    }
}
