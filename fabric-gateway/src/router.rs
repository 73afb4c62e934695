//! The gateway's routes: every handler mounted on a [`Router`], with the layers around them.
//! Handlers take the [`Gateway`] as their state; this file is the only one that names them
//! all.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::gateway::Gateway;
use crate::{auth, events, jsonrpc, openapi, page, rest, services};

impl Gateway {
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
