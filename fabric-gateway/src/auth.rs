//! The optional bearer token.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::gateway::Gateway;

/// Lets the request through when no token is configured, or it carries the token as
/// `Authorization: Bearer TOKEN` or `?access_token=TOKEN`; else 401.
pub(crate) async fn check(
    State(gateway): State<Gateway>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = gateway.inner.config.token.as_deref() else {
        return next.run(request).await;
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let from_query = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
    });
    let given = from_header.or(from_query);
    if given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": {
            "code": "unauthorized",
            "message": "this gateway needs `Authorization: Bearer TOKEN`",
        }})),
    )
        .into_response()
}

/// Compares in time that depends on the length only, not on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
