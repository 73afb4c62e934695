//! REST: `POST /services/{domain}/{type}/{id}/{method}` with a JSON object of keyword
//! arguments; the result as JSON with 200, or an error with the status of its kind.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::bridge::{Target, Trace};
use crate::failure::CallError;
use crate::gateway::Gateway;
use fabric_core::parse_duration;

/// The header that asks for a call's timeout (`500ms`, `5s`).
pub(crate) const TIMEOUT_HEADER: &str = "x-fabric-timeout";

/// `?timeout=500ms`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TimeoutQuery {
    timeout: Option<String>,
}

/// The timeout a request asks for, from `X-Fabric-Timeout` or else `?timeout=`.
pub(crate) fn asked_timeout(
    headers: &HeaderMap,
    query: &TimeoutQuery,
) -> Result<Option<Duration>, String> {
    let text = match headers.get(TIMEOUT_HEADER) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "X-Fabric-Timeout is not text".to_owned())?,
        ),
        None => query.timeout.as_deref(),
    };
    text.map(parse_duration).transpose()
}

pub(crate) async fn handle(
    State(gateway): State<Gateway>,
    Path((domain, service_type, id, method)): Path<(String, String, String, String)>,
    Query(query): Query<TimeoutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let timeout = match asked_timeout(&headers, &query) {
        Ok(asked) => gateway.inner.config.timeout_for(asked),
        Err(message) => return failure(CallError::BadArguments(message)),
    };
    let arguments = match arguments(&body) {
        Ok(arguments) => arguments,
        Err(message) => return failure(CallError::BadArguments(message)),
    };
    let outcome = match Target::find(&gateway, &domain, &service_type, &id) {
        Ok(target) => {
            let trace = Trace::of(&headers);
            target
                .call(&gateway, &method, arguments, timeout, &trace)
                .await
        }
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(error) => failure(error),
    }
}

/// The keyword arguments: a JSON object; an empty body is none.
fn arguments(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => {
            Err("the body must be a JSON object of keyword arguments, e.g. {\"x\": 5}".to_owned())
        }
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

fn failure(error: CallError) -> Response {
    (error.status(), Json(error.rest_body())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_come_from_the_header_first() {
        let mut headers = HeaderMap::new();
        let query = TimeoutQuery {
            timeout: Some("5s".into()),
        };
        assert_eq!(
            asked_timeout(&headers, &query),
            Ok(Some(Duration::from_secs(5)))
        );
        headers.insert(TIMEOUT_HEADER, "500ms".parse().unwrap());
        assert_eq!(
            asked_timeout(&headers, &query),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(
            asked_timeout(&HeaderMap::new(), &TimeoutQuery::default()),
            Ok(None)
        );
        headers.insert(TIMEOUT_HEADER, "soon".parse().unwrap());
        assert!(asked_timeout(&headers, &query).is_err());
    }

    #[test]
    fn arguments_are_an_object() {
        assert_eq!(arguments(b"").unwrap(), Map::new());
        assert_eq!(arguments(br#"{"x": 1}"#).unwrap()["x"], 1);
        assert!(arguments(b"[1]").is_err());
        assert!(arguments(b"{").is_err());
    }
}
