//! An HTTP gateway in front of fabric (and amqp-fabric) services.
//!
//! Clients outside the broker (browsers, mobile apps, other languages) talk to one HTTP entry
//! point; the gateway finds the services through the registry's keep-alives and calls them
//! over the broker, in JSON. Routes:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /jsonrpc/{domain}/{type}/{id}` | JSON-RPC 2.0: single calls, notifications and batches |
//! | `POST /services/{domain}/{type}/{id}/{method}` | REST: a JSON object of keyword arguments in, the result out |
//! | `GET /services` | the live services, as the registry knows them |
//! | `GET /openapi.json` | an OpenAPI 3.1 document of the live contracts |
//! | `POST /events/{domain}/{routing_key}` | publishes an event, confirmed by the broker |
//! | `GET /events/{domain}?topic=order.*` | events as Server-Sent Events |
//! | `GET /` | a live page: services, a call form, events scrolling by |
//!
//! Mount it in a server of your own, or run the `fabric-gateway` binary:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_core::{Codec, Fabric, FabricConfig};
//! use fabric_gateway::{Gateway, GatewayConfig};
//!
//! let fabric = Fabric::connect(
//!     FabricConfig::new("amqp://127.0.0.1", "shop", "fabric_gateway", "gw1")
//!         .codec(Codec::Json)
//!         .keep_alive_listen(true),
//! )?;
//! let gateway = Gateway::new(fabric, GatewayConfig::default().token("s3cret"));
//! let app = axum::Router::new().nest("/api", gateway.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Calls are blocking in fabric ([`fabric_core::PendingCall::wait`]); the gateway sends each
//! with [`fabric_core::RpcClient::start_call_fallible`] and waits for it on tokio's blocking
//! pool, whose threads are reused, under a semaphore of
//! [`GatewayConfig::max_concurrent_calls`] permits: requests beyond it wait their turn as
//! futures, holding no thread.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod bridge;
mod config;
mod events;
mod failure;
mod gateway;
mod jsonrpc;
mod openapi;
mod page;
mod rest;
mod router;
mod schema;
mod services;

pub use config::GatewayConfig;
pub use gateway::Gateway;
