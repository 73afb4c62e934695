//! `GET /services`: the live services, as their keep-alives describe them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fabric_core::{ServiceFilter, ServiceInfo};
use serde_json::{json, Value};

use crate::gateway::Gateway;

pub(crate) async fn list(State(gateway): State<Gateway>) -> Response {
    match gateway.inner.fabric.list_services(&ServiceFilter::any()) {
        Ok(services) => {
            let all: Vec<Value> = services.iter().map(ServiceInfo::to_json).collect();
            (StatusCode::OK, Json(Value::Array(all))).into_response()
        }
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": error.kind(), "message": error.to_string()}})),
        )
            .into_response(),
    }
}
