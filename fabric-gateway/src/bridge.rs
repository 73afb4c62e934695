//! From async HTTP handlers to fabric's blocking calls, without a thread per request.
//!
//! A call is sent with [`RpcClient::start_call_fallible`] and waited for with
//! [`PendingCall::wait`](fabric_core::PendingCall::wait), which blocks; both run on tokio's
//! blocking pool, whose threads are reused across calls. A semaphore of
//! `max_concurrent_calls` permits bounds the calls in flight, so the pool never grows past
//! it: a request beyond it waits for a permit as a future, holding no thread.

use std::time::Duration;

use fabric_core::{
    CallContext, Codec, Contract, Error, MethodContract, RpcClient, ServiceAddress, ServiceFilter,
};
use serde_json::{Map, Value};

use crate::failure::CallError;
use crate::gateway::Gateway;
use crate::schema;

/// The built-in method every server answers, outside any contract.
const HEALTH_CHECK: &str = "health_check";

/// The W3C trace headers of an HTTP request, passed on to the calls it makes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Trace {
    /// The `traceparent` and `tracestate` headers of `headers`.
    pub(crate) fn of(headers: &axum::http::HeaderMap) -> Trace {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Trace {
            traceparent: text("traceparent"),
            tracestate: text("tracestate"),
        }
    }

    /// The context to attach: `None` without a valid `traceparent` (the call starts a trace).
    fn context(&self) -> Option<CallContext> {
        CallContext::continue_trace(self.traceparent.as_deref()?, self.tracestate.as_deref())
    }
}

/// A service to call, with its contract when a live instance announces one.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) address: ServiceAddress,
    pub(crate) contract: Option<Contract>,
}

impl Target {
    /// The service at `domain/type/id`, and what the registry knows of its contract.
    pub(crate) fn find(
        gateway: &Gateway,
        domain: &str,
        service_type: &str,
        id: &str,
    ) -> Result<Target, CallError> {
        let address = ServiceAddress::new(domain, service_type, id)
            .map_err(|e| CallError::NoSuchService(e.to_string()))?;
        let filter = ServiceFilter::any()
            .domain(domain)
            .service_type(service_type)
            .service_id(id);
        let contract = match gateway.inner.fabric.list_services(&filter) {
            Ok(services) => services.iter().find_map(|info| info.contract().cloned()),
            // A gateway whose fabric does not listen knows no contract, and calls as given.
            Err(Error::NotListening) => None,
            Err(error) => return Err(CallError::from(error)),
        };
        Ok(Target { address, contract })
    }

    /// The method's contract; [`CallError::UnknownMethod`] when the contract is known and
    /// has no such method. `Ok(None)` when there is no contract to check against.
    pub(crate) fn method(&self, method: &str) -> Result<Option<&MethodContract>, CallError> {
        let Some(contract) = &self.contract else {
            return Ok(None);
        };
        match contract.find(method) {
            Some(found) => Ok(Some(found)),
            None if method == HEALTH_CHECK => Ok(None),
            None => Err(CallError::UnknownMethod(format!(
                "service {} has no method `{method}`",
                self.address.fqn()
            ))),
        }
    }

    /// Calls `method` with keyword `arguments`, waiting at most `timeout`, in the W3C trace
    /// `traceparent` names when there is one: its JSON result, or why not.
    pub(crate) async fn call(
        &self,
        gateway: &Gateway,
        method: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
        trace: &Trace,
    ) -> Result<Value, CallError> {
        let error_type = self
            .method(method)?
            .and_then(|m| schema::error_type_of(m.return_type()).map(str::to_owned));
        let permit = gateway
            .inner
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Internal("closed"))?;
        let client = RpcClient::new(
            &gateway.inner.fabric,
            self.address.domain(),
            self.address.service_type(),
            self.address.service_id(),
        )
        .map_err(CallError::from)?
        .with_codec(Codec::Json)
        .with_timeout(timeout);
        let method = method.to_owned();
        let context = trace.context();
        let waited = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // The call continues the HTTP caller's trace; a blocking-pool thread holds no
            // other context, and the guard leaves it none.
            let _attached = context.as_ref().map(CallContext::attach);
            client
                .start_call_fallible::<_, Value, Value>(&method, &arguments)
                .and_then(|pending| pending.wait())
        })
        .await;
        match waited {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(value))) => Err(CallError::Service {
                kind: service_error_type(error_type.as_deref(), &value),
                message: None,
                value: Some(value),
            }),
            Ok(Err(error)) => Err(CallError::from(error)),
            Err(_) => Err(CallError::Internal("panic")),
        }
    }
}

/// The `type` a fabric server gives the error `value` of a method whose error type is
/// `error_type` (from its contract): `Type.Variant` for a variant of an enum, `Type` for a
/// struct, `Error` for anything without a name (see fabric-core's `Reply::error`). Read back
/// from JSON, so a best guess: the exact name is not in what fabric hands a JSON caller.
fn service_error_type(error_type: Option<&str>, value: &Value) -> String {
    let Some(name) = error_type.filter(|name| !schema::is_unnamed(name)) else {
        return "Error".to_owned();
    };
    let variant = match value {
        Value::String(text) => Some(text.as_str()),
        Value::Object(map) if map.len() == 1 => map.keys().next().map(String::as_str),
        _ => None,
    };
    match variant.filter(|v| {
        v.starts_with(|c: char| c.is_ascii_uppercase())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        Some(variant) => format!("{name}.{variant}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_types_follow_fabrics_rule() {
        assert_eq!(
            service_error_type(Some("DivError"), &json!("DivisionByZero")),
            "DivError.DivisionByZero"
        );
        assert_eq!(
            service_error_type(Some("ShopError"), &json!({"OutOfStock": {"sku": "A"}})),
            "ShopError.OutOfStock"
        );
        assert_eq!(
            service_error_type(Some("NotFound"), &json!({"id": 3})),
            "NotFound"
        );
        assert_eq!(
            service_error_type(Some("String"), &json!("no inverse")),
            "Error"
        );
        assert_eq!(service_error_type(None, &json!(1)), "Error");
    }
}
