//! JSON-RPC 2.0 (<https://www.jsonrpc.org/specification>) at
//! `POST /jsonrpc/{domain}/{type}/{id}`: `method` is the service's method, `params` its
//! keyword arguments (an object) or its arguments by position (an array, mapped through the
//! contract's parameter order).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use serde_json::{json, Map, Value};

use crate::bridge::{Target, Trace};
use crate::failure::{code, CallError};
use crate::gateway::Gateway;
use crate::rest::{asked_timeout, TimeoutQuery};

/// One request of a call or batch, checked: what to call and how to answer.
#[derive(Debug, PartialEq)]
struct Request {
    /// `None` for a notification: no `id` member, nothing answered.
    id: Option<Value>,
    method: String,
    params: Params,
}

#[derive(Debug, PartialEq)]
enum Params {
    None,
    ByName(Map<String, Value>),
    ByPosition(Vec<Value>),
}

/// The handler: answers 200 with a response or an array of them, or 204 with no body when
/// there is nothing to answer (notifications).
pub(crate) async fn handle(
    State(gateway): State<Gateway>,
    Path((domain, service_type, id)): Path<(String, String, String)>,
    Query(query): Query<TimeoutQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let timeout = match asked_timeout(&headers, &query) {
        Ok(asked) => gateway.inner.config.timeout_for(asked),
        Err(message) => {
            return answer(Some(error(
                Value::Null,
                code::INVALID_REQUEST,
                &message,
                None,
            )))
        }
    };
    let target = Target::find(&gateway, &domain, &service_type, &id);
    let trace = Trace::of(&headers);
    answer(respond(&gateway, &target, &body, timeout, &trace).await)
}

fn answer(response: Option<Value>) -> Response {
    match response {
        Some(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The answer to a body: `None` when nothing is to be answered.
async fn respond(
    gateway: &Gateway,
    target: &Result<Target, CallError>,
    body: &[u8],
    timeout: Duration,
    trace: &Trace,
) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return Some(error(Value::Null, code::PARSE_ERROR, "Parse error", None)),
    };
    match parsed {
        Value::Array(items) if items.is_empty() => Some(error(
            Value::Null,
            code::INVALID_REQUEST,
            "Invalid Request: an empty batch",
            None,
        )),
        Value::Array(items) => {
            let answers = join_all(
                items
                    .into_iter()
                    .map(|item| one(gateway, target, item, timeout, trace)),
            )
            .await;
            let answers: Vec<Value> = answers.into_iter().flatten().collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        single => one(gateway, target, single, timeout, trace).await,
    }
}

/// The answer to one request of a call or batch.
async fn one(
    gateway: &Gateway,
    target: &Result<Target, CallError>,
    item: Value,
    timeout: Duration,
    trace: &Trace,
) -> Option<Value> {
    let request = match check(item) {
        Ok(request) => request,
        Err((id, message)) => return Some(error(id, code::INVALID_REQUEST, &message, None)),
    };
    let outcome = match target {
        Ok(target) => call(gateway, target, &request, timeout, trace).await,
        Err(failure) => Err(failure.clone()),
    };
    let id = request.id?;
    Some(match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(failure) => error(id, failure.rpc_code(), &failure.message(), failure.data()),
    })
}

async fn call(
    gateway: &Gateway,
    target: &Target,
    request: &Request,
    timeout: Duration,
    trace: &Trace,
) -> Result<Value, CallError> {
    let method = target.method(&request.method)?;
    let arguments = match &request.params {
        Params::None => Map::new(),
        Params::ByName(map) => map.clone(),
        Params::ByPosition(values) => {
            let Some(method) = method else {
                return Err(CallError::BadArguments(format!(
                    "params by position need the parameter order, and {} announces no \
                     contract: give params by name (an object)",
                    target.address.fqn()
                )));
            };
            let params = method.params();
            if values.len() > params.len() {
                return Err(CallError::BadArguments(format!(
                    "`{}` takes {} parameters, {} given",
                    method.name(),
                    params.len(),
                    values.len()
                )));
            }
            params
                .iter()
                .zip(values)
                .map(|(param, value)| (param.name().to_owned(), value.clone()))
                .collect()
        }
    };
    target
        .call(gateway, &request.method, arguments, timeout, trace)
        .await
}

/// Checks a Request object; an invalid one is answered with the id it had (when that id
/// is valid) and why.
fn check(item: Value) -> Result<Request, (Value, String)> {
    let Value::Object(mut object) = item else {
        return Err((Value::Null, "Invalid Request: not an object".to_owned()));
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err((
                Value::Null,
                "Invalid Request: `id` must be a string, a number or null".to_owned(),
            ))
        }
    };
    let invalid = |message: &str| (id.clone().unwrap_or(Value::Null), message.to_owned());
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("Invalid Request: `jsonrpc` must be \"2.0\""));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(invalid("Invalid Request: `method` must be a string")),
    };
    let params = match object.remove("params") {
        None => Params::None,
        Some(Value::Object(map)) => Params::ByName(map),
        Some(Value::Array(values)) => Params::ByPosition(values),
        Some(_) => {
            return Err(invalid(
                "Invalid Request: `params` must be an object or an array",
            ))
        }
    };
    Ok(Request { id, method, params })
}

/// An error response.
fn error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "error": error, "id": id})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_to_the_letter() {
        let ok =
            check(json!({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}))
                .unwrap();
        assert_eq!(ok.id, Some(json!(1)));
        assert_eq!(ok.params, Params::ByPosition(vec![json!(42), json!(23)]));
        let notification =
            check(json!({"jsonrpc": "2.0", "method": "update", "params": [1]})).unwrap();
        assert_eq!(notification.id, None);
        let null_id = check(json!({"jsonrpc": "2.0", "method": "m", "id": null})).unwrap();
        assert_eq!(
            null_id.id,
            Some(Value::Null),
            "an id of null is a request, not a notification"
        );
        for bad in [
            json!({"jsonrpc": "2.0", "method": 1, "params": "bar"}),
            json!({"jsonrpc": "1.0", "method": "m", "id": 1}),
            json!({"method": "m", "id": 1}),
            json!({"jsonrpc": "2.0", "method": "m", "params": "bar", "id": 1}),
            json!({"jsonrpc": "2.0", "method": "m", "id": [1]}),
            json!(1),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(
            check(json!({"jsonrpc": "2.0", "method": 1, "id": 7}))
                .unwrap_err()
                .0,
            json!(7)
        );
    }
}
