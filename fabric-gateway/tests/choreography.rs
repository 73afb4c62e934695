//! The choreography example's HTTP entry: an order placed with a POST through the gateway
//! reaches the broker as `order.created`, in the shape the inventory service reads
//! (`fabric_examples::shop::OrderCreated`), and is seen by an SSE client of the gateway.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{connect, post, unique_domain, wait_for_contract, WAIT};
use fabric_core::{Codec, FabricConfig};
use fabric_examples::shop::{Desk, OrderCreated, OrderDeskServer};
use fabric_gateway::GatewayConfig;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_placed_with_a_post_through_the_gateway() {
    let domain = unique_domain("orders");
    let desk_fabric = connect(
        FabricConfig::new(&common::broker_url(), &domain, "orders", "desk")
            .codec(Codec::Json)
            .keep_alive(std::time::Duration::from_millis(300)),
    );
    let _desk = OrderDeskServer::new(Desk::new(desk_fabric.clone(), 100))
        .serve(&desk_fabric)
        .unwrap();
    // The inventory's view: a fabric subscriber of `order.created`.
    let inventory = connect(FabricConfig::new(
        &common::broker_url(),
        &domain,
        "inventory",
        "i1",
    ));
    let orders = inventory
        .event_subscriber("inventory")
        .topic("order.created")
        .inbox()
        .unwrap();
    let gateway = common::gateway(&domain, GatewayConfig::default());
    wait_for_contract(gateway.fabric(), &domain, "orders", "desk");
    let router = gateway.router();

    // An HTTP client following the choreography.
    let events = router
        .clone()
        .oneshot(
            Request::get(format!("/events/{domain}?topic=order.*"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut events = events.into_body();
    let mut seen = String::new();
    async fn until(body: &mut Body, seen: &mut String, wanted: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !seen.contains(wanted) {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .unwrap_or_else(|_| panic!("no `{wanted}` within {WAIT:?}: {seen}"))
                .expect("the stream goes on")
                .expect("a frame");
            if let Some(data) = frame.data_ref() {
                seen.push_str(&String::from_utf8_lossy(data));
            }
        }
    }
    until(&mut events, &mut seen, "event: ready").await;

    let placed = post(
        &router,
        &format!("/services/{domain}/orders/desk/place_order"),
        r#"{"item": "book", "quantity": 2}"#,
    )
    .await;
    assert_eq!(
        placed.status,
        200,
        "{}",
        String::from_utf8_lossy(&placed.body)
    );
    assert_eq!(placed.json(), json!(100));

    let event = orders
        .recv_timeout(WAIT)
        .unwrap()
        .expect("order.created reached the inventory");
    let order: OrderCreated = event.decode().unwrap();
    assert_eq!(
        (order.order_id, order.item.as_str(), order.quantity),
        (100, "book", 2)
    );

    until(&mut events, &mut seen, "order.created").await;
    let line = seen
        .lines()
        .find(|line| line.contains("order.created"))
        .unwrap()
        .trim_start_matches("data: ");
    let streamed: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        streamed["body"],
        json!({"order_id": 100, "item": "book", "quantity": 2})
    );

    // The desk's own error comes back as 422 with its value.
    let refused = post(
        &router,
        &format!("/services/{domain}/orders/desk/place_order"),
        r#"{"item": "book", "quantity": 0}"#,
    )
    .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.json()["error"]["value"],
        "an order needs a quantity of at least 1"
    );
}
