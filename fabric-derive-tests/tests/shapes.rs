//! Every shape of method the macro accepts, dispatched in both codecs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use fabric_core::{fabric_service, Codec, Dispatch};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub items: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Point,
    Circle { radius: f64 },
    Polygon(Vec<(i32, i32)>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LookupError {
    NotFound { id: u64 },
    Forbidden(String),
}

/// Supertraits bind the implementation and are otherwise left alone.
#[fabric_service]
pub trait Shop: Send + Sync {
    fn store(&self, order: Order) -> Order;
    fn scale(&self, shape: Shape, factor: f64) -> Shape;
    fn lookup(&self, id: u64) -> Result<Order, LookupError>;
    fn maybe(&self, value: Option<u8>) -> Option<u8>;
    fn totals(&self, orders: Vec<Order>) -> BTreeMap<u64, usize>;
    fn pair(&self, point: (i32, i32)) -> [i32; 2];
    /// Returns nothing, implicitly.
    fn ping(&self);
    /// Returns nothing, explicitly.
    fn touch(&self, times: u32) -> ();
    fn count(&self) -> u32;
    fn r#type(&self, r#in: String) -> String;
    fn sorted(&self, mut values: Vec<i64>) -> Vec<i64> {
        values.sort();
        values
    }
}

#[derive(Default)]
struct Keeper {
    touches: AtomicU32,
}

impl Shop for Keeper {
    fn store(&self, mut order: Order) -> Order {
        order.items.push("stored".into());
        order
    }
    fn scale(&self, shape: Shape, factor: f64) -> Shape {
        match shape {
            Shape::Circle { radius } => Shape::Circle {
                radius: radius * factor,
            },
            other => other,
        }
    }
    fn lookup(&self, id: u64) -> Result<Order, LookupError> {
        match id {
            1 => Ok(Order {
                id,
                items: vec!["tea".into()],
                note: None,
            }),
            2 => Err(LookupError::Forbidden("secret".into())),
            _ => Err(LookupError::NotFound { id }),
        }
    }
    fn maybe(&self, value: Option<u8>) -> Option<u8> {
        value.map(|v| v + 1)
    }
    fn totals(&self, orders: Vec<Order>) -> BTreeMap<u64, usize> {
        orders.iter().map(|o| (o.id, o.items.len())).collect()
    }
    fn pair(&self, (a, b): (i32, i32)) -> [i32; 2] {
        [b, a]
    }
    fn ping(&self) {}
    fn touch(&self, times: u32) {
        self.touches.fetch_add(times, Ordering::SeqCst);
    }
    fn count(&self) -> u32 {
        self.touches.load(Ordering::SeqCst)
    }
    fn r#type(&self, r#in: String) -> String {
        format!("type of {in}", in = r#in)
    }
}

fn server() -> ShopServer<Keeper> {
    ShopServer {
        imp: Keeper::default(),
    }
}

/// Calls `method` on `server` through `codec`, as a remote caller would.
fn call<A, R>(server: &ShopServer<Keeper>, codec: Codec, method: &str, args: &A) -> R
where
    A: Serialize,
    R: DeserializeOwned,
{
    let body = codec.encode(args, "args").unwrap();
    server
        .dispatch(method, codec, &body)
        .unwrap()
        .decode()
        .unwrap()
}

#[test]
fn user_types_options_collections_and_results() {
    let server = server();
    for codec in [Codec::Json, Codec::Bincode] {
        let order = Order {
            id: 7,
            items: vec!["bread".into()],
            note: Some("fresh".into()),
        };
        let stored: Order = call(&server, codec, "store", &ShopStoreArgs { order });
        assert_eq!(stored.items, ["bread", "stored"]);

        let shape = Shape::Circle { radius: 2.0 };
        let scaled: Shape = call(
            &server,
            codec,
            "scale",
            &ShopScaleArgs { shape, factor: 1.5 },
        );
        assert_eq!(scaled, Shape::Circle { radius: 3.0 });
        let polygon = Shape::Polygon(vec![(0, 0), (1, 2)]);
        let same: Shape = call(
            &server,
            codec,
            "scale",
            &ShopScaleArgs {
                shape: polygon.clone(),
                factor: 2.0,
            },
        );
        assert_eq!(same, polygon);

        // `Ok` is the value alone; `Err` an error reply that carries the error.
        let found: Order = call(&server, codec, "lookup", &ShopLookupArgs { id: 1 });
        assert_eq!(found.items, ["tea"]);
        let lookup = |id| {
            let body = codec.encode(&ShopLookupArgs { id }, "args").unwrap();
            server.dispatch("lookup", codec, &body).unwrap()
        };
        let forbidden = lookup(2);
        assert_eq!(forbidden.error_type(), Some("LookupError.Forbidden"));
        assert_eq!(
            forbidden.decode_error::<LookupError>().unwrap().unwrap(),
            LookupError::Forbidden("secret".into())
        );
        let missing = lookup(9);
        assert_eq!(missing.error_type(), Some("LookupError.NotFound"));
        assert_eq!(
            missing.decode_error::<LookupError>().unwrap().unwrap(),
            LookupError::NotFound { id: 9 }
        );

        let some: Option<u8> = call(&server, codec, "maybe", &ShopMaybeArgs { value: Some(1) });
        assert_eq!(some, Some(2));
        let none: Option<u8> = call(&server, codec, "maybe", &ShopMaybeArgs { value: None });
        assert_eq!(none, None);

        let orders = vec![
            Order {
                id: 1,
                items: vec!["a".into(), "b".into()],
                note: None,
            },
            Order {
                id: 2,
                items: Vec::new(),
                note: None,
            },
        ];
        let totals: BTreeMap<u64, usize> =
            call(&server, codec, "totals", &ShopTotalsArgs { orders });
        assert_eq!(totals, BTreeMap::from([(1, 2), (2, 0)]));

        let swapped: [i32; 2] = call(&server, codec, "pair", &ShopPairArgs { point: (1, 2) });
        assert_eq!(swapped, [2, 1]);

        let sorted: Vec<i64> = call(
            &server,
            codec,
            "sorted",
            &ShopSortedArgs {
                values: vec![3, 1, 2],
            },
        );
        assert_eq!(sorted, [1, 2, 3]);
    }
}

#[test]
fn a_missing_option_in_json_is_none() {
    // serde's rule for `Option` fields, which Python callers may rely on for defaults.
    let reply = server().dispatch("maybe", Codec::Json, b"{}").unwrap();
    assert_eq!(reply.body(), b"null");
}

#[test]
fn unit_results_and_methods_without_arguments() {
    let server = server();
    for codec in [Codec::Json, Codec::Bincode] {
        let () = call(&server, codec, "ping", &ShopPingArgs {});
        let () = call(&server, codec, "touch", &ShopTouchArgs { times: 2 });
    }
    let count: u32 = call(&server, Codec::Json, "count", &ShopCountArgs {});
    assert_eq!(count, 4);

    // A method without arguments takes an empty struct: `{}` in JSON, nothing in bincode.
    assert_eq!(Codec::Json.encode(&ShopPingArgs {}, "args").unwrap(), b"{}");
    assert!(Codec::Bincode
        .encode(&ShopPingArgs {}, "args")
        .unwrap()
        .is_empty());
    // `()` is JSON's `null`, as a Python method returning `None` gives.
    assert_eq!(
        server.dispatch("ping", Codec::Json, b"{}").unwrap().body(),
        b"null"
    );

    let _: fn(&ShopClient) -> fabric_core::Result<()> = ShopClient::ping;
    let _: fn(&ShopClient, u32) -> fabric_core::Result<()> = ShopClient::touch;
    let _: fn(&ShopClient) -> fabric_core::Result<u32> = ShopClient::count;
}

#[test]
fn raw_identifiers_are_plain_names_on_the_wire() {
    let args = ShopTypeArgs { r#in: "tea".into() };
    assert_eq!(
        Codec::Json.encode(&args, "args").unwrap(),
        br#"{"in":"tea"}"#
    );
    let server = server();
    let reply = server
        .dispatch("type", Codec::Json, br#"{"in":"tea"}"#)
        .unwrap();
    assert_eq!(reply.body(), br#""type of tea""#);
    let _: fn(&ShopClient, String) -> fabric_core::Result<String> = ShopClient::r#type;
}

#[test]
fn methods_are_listed_in_the_trait_order() {
    assert_eq!(
        <ShopServer<Keeper> as Dispatch>::METHODS,
        [
            "store", "scale", "lookup", "maybe", "totals", "pair", "ping", "touch", "count",
            "type", "sorted"
        ]
    );
    assert_eq!(<ShopServer<Keeper> as Dispatch>::SERVICE, "Shop");
}
