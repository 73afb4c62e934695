//! Events over HTTP: `POST /events/{domain}/{routing_key}` publishes the JSON body as an
//! event, confirmed by the broker; `GET /events/{domain}?topic=order.*` streams the events
//! whose routing key matches as Server-Sent Events.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fabric_core::{Message, Subscription};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::gateway::Gateway;

/// How long a publish waits for the broker's confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Events held for a slow HTTP client before newer ones are dropped.
const BACKLOG: usize = 256;

/// `?topic=order.*`, repeated for several.
#[derive(Debug, Deserialize)]
pub(crate) struct Topics {
    topic: Option<String>,
}

pub(crate) async fn publish(
    State(gateway): State<Gateway>,
    Path((domain, routing_key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("the body is not JSON: {e}"),
                )
            }
        }
    };
    let inner = gateway.inner.clone();
    let published = tokio::task::spawn_blocking(move || {
        let fabric = inner.domain_fabric(&domain)?;
        fabric
            .publish_event(&routing_key, &payload)?
            .wait_timeout(CONFIRM_TIMEOUT)
    })
    .await;
    match published {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({"published": true}))).into_response(),
        Ok(Err(error @ fabric_core::Error::InvalidName { .. })) => {
            problem(StatusCode::BAD_REQUEST, error.kind(), &error.to_string())
        }
        Ok(Err(error)) => problem(StatusCode::BAD_GATEWAY, error.kind(), &error.to_string()),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        ),
    }
}

pub(crate) async fn stream(
    State(gateway): State<Gateway>,
    Path(domain): Path<String>,
    Query(topics): Query<Topics>,
) -> Response {
    let topic = topics.topic.unwrap_or_else(|| "#".to_owned());
    let (sender, receiver) = mpsc::channel::<Event>(BACKLOG);
    let inner = gateway.inner.clone();
    let subscribed = tokio::task::spawn_blocking(move || {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let fabric = inner.domain_fabric(&domain)?;
        // A queue of this stream's own: every stream gets every matching event.
        let name = format!(
            "fabric_gateway.sse.{}.{}.{}",
            fabric.address().service_id(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        fabric
            .event_subscriber(&name)
            .topic(&topic)
            .handle(move |message| {
                // A full backlog drops the event rather than hold up the subscription.
                let _ = sender.try_send(event_of(&message));
            })
    })
    .await;
    let subscription = match subscribed {
        Ok(Ok(subscription)) => Closing(Some(subscription)),
        Ok(Err(error @ fabric_core::Error::InvalidName { .. })) => {
            return problem(StatusCode::BAD_REQUEST, error.kind(), &error.to_string())
        }
        Ok(Err(error)) => {
            return problem(StatusCode::BAD_GATEWAY, error.kind(), &error.to_string())
        }
        Err(_) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    };
    Sse::new(events(subscription, receiver))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The stream of a subscription: first a `ready` event (the queue is bound: what is
/// published from now on comes), then each event. Dropping the stream (the client went
/// away) ends the subscription.
fn events(
    subscription: Closing,
    receiver: mpsc::Receiver<Event>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = Event::default().event("ready").data("{}");
    let first = stream::once(async move { Ok(ready) });
    let rest = stream::unfold(
        (subscription, receiver),
        |(subscription, mut receiver)| async move {
            let event = receiver.recv().await?;
            Some((Ok(event), (subscription, receiver)))
        },
    );
    futures_util::StreamExt::chain(first, rest)
}

/// One event as SSE: `event: fabric`, data `{"routing_key", "publisher", "publisher_type",
/// "content_type", "body"}`; the body is its JSON, or `null` for a body that is not JSON (a
/// bincode event of a Rust publisher), whose `size` in bytes is given instead.
fn event_of(message: &Message) -> Event {
    let mut data = json!({
        "routing_key": message.routing_key(),
        "publisher": message.publisher_id(),
        "publisher_type": message.publisher_type(),
        "content_type": message.content_type(),
    });
    match serde_json::from_slice::<Value>(message.body()) {
        Ok(body) => data["body"] = body,
        Err(_) => {
            data["body"] = Value::Null;
            data["size"] = json!(message.body().len());
        }
    }
    Event::default().event("fabric").data(data.to_string())
}

/// A subscription closed off the async threads when dropped (closing talks to the broker).
#[derive(Debug)]
struct Closing(Option<Subscription>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(subscription) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(subscription));
                }
                Err(_) => drop(subscription),
            }
        }
    }
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}
