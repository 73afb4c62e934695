//! The gateway: its shared state and its router.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use fabric_core::{Codec, Fabric, FabricConfig};
use serde_json::json;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::GatewayConfig;
use crate::{auth, events, jsonrpc, openapi, page, rest, services};

/// An HTTP gateway over one [`Fabric`]: cheap to clone, shared by every request.
///
/// The fabric should listen to keep-alives
/// ([`FabricConfig::keep_alive_listen`]`(true)`) and speak JSON ([`Codec::Json`]): the
/// gateway finds services, their contracts and the parameter order of by-position JSON-RPC
/// calls in the registry. It calls every service in JSON whatever the fabric's codec.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) fabric: Fabric,
    pub(crate) config: GatewayConfig,
    /// One permit per call in flight.
    pub(crate) calls: Arc<Semaphore>,
    /// A participant per other domain, for its events (a fabric publishes and subscribes in
    /// its own domain), connected when first needed.
    domains: Mutex<HashMap<String, Fabric>>,
}

impl Gateway {
    /// A gateway calling services over `fabric`, with `config`.
    pub fn new(fabric: Fabric, config: GatewayConfig) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                calls: Arc::new(Semaphore::new(config.max_concurrent_calls)),
                fabric,
                config,
                domains: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The fabric it calls over.
    pub fn fabric(&self) -> &Fabric {
        &self.inner.fabric
    }

    /// Every route of the gateway (see the [crate documentation](crate)), with the body
    /// limit, the token check, CORS if configured, and a plain 500 for a handler that
    /// panics: mount it where you like with [`Router::nest`] or [`Router::merge`].
    pub fn router(&self) -> Router {
        let config = &self.inner.config;
        let api = Router::new()
            .route("/jsonrpc/{domain}/{type}/{id}", post(jsonrpc::handle))
            .route("/services", get(services::list))
            .route(
                "/services/{domain}/{type}/{id}/{method}",
                post(rest::handle),
            )
            .route("/openapi.json", get(openapi::handle))
            .route("/events/{domain}", get(events::stream))
            .route("/events/{domain}/{routing_key}", post(events::publish))
            .route_layer(middleware::from_fn_with_state(self.clone(), auth::check));
        let mut router = Router::new()
            .route("/", get(page::handle))
            .merge(api)
            .fallback(not_found)
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(config.max_body))
            .layer(CatchPanicLayer::custom(panicked));
        if !config.cors_origins.is_empty() {
            let origins = if config.cors_origins.iter().any(|o| o == "*") {
                AllowOrigin::any()
            } else {
                AllowOrigin::list(
                    config
                        .cors_origins
                        .iter()
                        .filter_map(|o| HeaderValue::from_str(o).ok()),
                )
            };
            router = router.layer(
                CorsLayer::new()
                    .allow_origin(origins)
                    .allow_methods([Method::GET, Method::POST])
                    .allow_headers([
                        header::AUTHORIZATION,
                        header::CONTENT_TYPE,
                        header::HeaderName::from_static("x-fabric-timeout"),
                    ]),
            );
        }
        router
    }
}

impl Inner {
    /// The participant for `domain`'s events: the gateway's own fabric in its domain, else
    /// one connected for that domain, kept for the next time. Blocking: call it off the
    /// async threads.
    pub(crate) fn domain_fabric(&self, domain: &str) -> fabric_core::Result<Fabric> {
        if self.fabric.address().domain() == domain {
            return Ok(self.fabric.clone());
        }
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fabric) = domains.get(domain) {
            return Ok(fabric.clone());
        }
        let own = self.fabric.config();
        let mut config = FabricConfig::new(
            own.url(),
            domain,
            "fabric_gateway",
            self.fabric.address().service_id(),
        )
        .codec(Codec::Json);
        for url in own.urls().iter().skip(1) {
            config = config.fallback_url(url);
        }
        let fabric = Fabric::connect(config)?;
        domains.insert(domain.to_owned(), fabric.clone());
        Ok(fabric)
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"code": "not_found", "message": "no such route"}})),
    )
        .into_response()
}

/// A handler panicked: say so, without the panic's message or a backtrace.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": {"code": "internal", "message": "internal error"}})),
    )
        .into_response()
}
