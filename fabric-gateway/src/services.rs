//! `GET /services`: the live services, as their keep-alives describe them.

use std::time::SystemTime;

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
            let all: Vec<Value> = services.iter().map(to_json).collect();
            (StatusCode::OK, Json(Value::Array(all))).into_response()
        }
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": error.kind(), "message": error.to_string()}})),
        )
            .into_response(),
    }
}

/// What the registry knows of one participant.
pub(crate) fn to_json(info: &ServiceInfo) -> Value {
    let address = &info.address;
    json!({
        "service": format!("{}/{}/{}", address.domain(), address.service_type(), address.service_id()),
        "domain": address.domain(),
        "type": address.service_type(),
        "id": address.service_id(),
        "instance": info.instance,
        "version": info.version,
        "host": info.host,
        "pid": info.pid,
        "started_at": info.started_at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64()),
        "in_flight": info.in_flight,
        "workers": info.workers,
        "methods": info.methods,
        "contract_hash": info.contract_hash().map(|h| h.to_string()),
        "contract": info.contract(),
        "heard_seconds_ago": info.age().as_secs_f64(),
    })
}
