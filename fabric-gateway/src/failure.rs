//! Why a call through the gateway failed, and how each protocol says it: an HTTP status for
//! REST, a JSON-RPC error code. One table, here.

use axum::http::StatusCode;
use fabric_core::Error;
use serde_json::{json, Value};

/// JSON-RPC 2.0's own codes, and the server errors (-32000..-32099) the gateway defines.
pub(crate) mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid Request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// No instance of the service is running.
    pub const NO_SUCH_SERVICE: i64 = -32000;
    /// No reply within the timeout.
    pub const TIMEOUT: i64 = -32001;
    /// The service answered with its own error (type and value in `data`).
    pub const SERVICE_ERROR: i64 = -32002;
    /// The connection to the broker broke, or the broker is unreachable.
    pub const CONNECTION_LOST: i64 = -32003;
}

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// No instance of the service runs.
    NoSuchService(String),
    /// The service has no such method.
    UnknownMethod(String),
    /// The arguments do not fit the method.
    BadArguments(String),
    /// No reply in time.
    Timeout(String),
    /// The service's own error: its `type`, its message when it sent one, its value when it
    /// sent one.
    Service {
        kind: String,
        message: Option<String>,
        value: Option<Value>,
    },
    /// The broker connection broke under the call, or the broker stayed away.
    ConnectionLost(String),
    /// Anything else: said by kind only, the details go to the gateway's log.
    Internal(&'static str),
}

impl CallError {
    /// The HTTP status of a REST call that failed so.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            CallError::NoSuchService(_) => StatusCode::SERVICE_UNAVAILABLE,
            CallError::UnknownMethod(_) => StatusCode::NOT_FOUND,
            CallError::BadArguments(_) => StatusCode::BAD_REQUEST,
            CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            CallError::Service { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            CallError::ConnectionLost(_) => StatusCode::BAD_GATEWAY,
            CallError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code.
    pub(crate) fn rpc_code(&self) -> i64 {
        match self {
            CallError::NoSuchService(_) => code::NO_SUCH_SERVICE,
            CallError::UnknownMethod(_) => code::METHOD_NOT_FOUND,
            CallError::BadArguments(_) => code::INVALID_PARAMS,
            CallError::Timeout(_) => code::TIMEOUT,
            CallError::Service { .. } => code::SERVICE_ERROR,
            CallError::ConnectionLost(_) => code::CONNECTION_LOST,
            CallError::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// A stable snake_case name of the failure.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CallError::NoSuchService(_) => "no_such_service",
            CallError::UnknownMethod(_) => "unknown_method",
            CallError::BadArguments(_) => "bad_arguments",
            CallError::Timeout(_) => "timeout",
            CallError::Service { .. } => "service_error",
            CallError::ConnectionLost(_) => "connection_lost",
            CallError::Internal(_) => "internal",
        }
    }

    /// One line for people.
    pub(crate) fn message(&self) -> String {
        match self {
            CallError::NoSuchService(m)
            | CallError::UnknownMethod(m)
            | CallError::BadArguments(m)
            | CallError::Timeout(m)
            | CallError::ConnectionLost(m) => m.clone(),
            CallError::Service { kind, message, .. } => match message {
                Some(message) => format!("the service answered with an error ({kind}): {message}"),
                None => format!("the service answered with an error ({kind})"),
            },
            CallError::Internal(kind) => format!("internal error ({kind})"),
        }
    }

    /// What more there is to say, as JSON: the service error's type, message and value.
    pub(crate) fn data(&self) -> Option<Value> {
        match self {
            CallError::Service {
                kind,
                message,
                value,
            } => {
                let mut data = json!({ "type": kind });
                if let Some(message) = message {
                    data["message"] = json!(message);
                }
                if let Some(value) = value {
                    data["value"] = value.clone();
                }
                Some(data)
            }
            _ => None,
        }
    }

    /// The REST error body: `{"error": {"code", "message", "type"?, "value"?}}`.
    pub(crate) fn rest_body(&self) -> Value {
        let mut error = json!({ "code": self.kind(), "message": self.message() });
        if let Some(Value::Object(data)) = self.data() {
            for (key, value) in data {
                if key != "message" {
                    error[key] = value;
                }
            }
        }
        json!({ "error": error })
    }
}

impl From<Error> for CallError {
    fn from(error: Error) -> CallError {
        let line = || error.to_string().replace('\n', " ");
        match &error {
            Error::NoSuchService { .. } => CallError::NoSuchService(line()),
            Error::UnknownMethod { .. } => CallError::UnknownMethod(line()),
            // A method name the broker cannot carry names no method.
            Error::InvalidName { kind: "method", .. } => CallError::UnknownMethod(line()),
            Error::BadArguments { .. } | Error::InvalidName { .. } => {
                CallError::BadArguments(line())
            }
            Error::Timeout { .. } | Error::DeadlineExceeded { .. } => CallError::Timeout(line()),
            Error::Remote { kind, message, .. } => CallError::Service {
                kind: kind.clone(),
                message: Some(message.clone()),
                value: None,
            },
            Error::CallInterrupted { .. }
            | Error::ConnectionLost { .. }
            | Error::Unavailable { .. }
            | Error::Closed => CallError::ConnectionLost(line()),
            other => {
                eprintln!("fabric-gateway: call failed: {other}");
                CallError::Internal(other.kind())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_failure_has_its_status_and_code() {
        let cases = [
            (
                Error::NoSuchService {
                    service: "a.b.c".into(),
                },
                503,
                -32000,
            ),
            (
                Error::UnknownMethod {
                    service: "a.b.c".into(),
                    method: "m".into(),
                },
                404,
                -32601,
            ),
            (
                Error::BadArguments {
                    service: "a.b.c".into(),
                    method: "m".into(),
                    message: "x".into(),
                },
                400,
                -32602,
            ),
            (
                Error::Timeout {
                    service: "a.b.c".into(),
                    method: "m".into(),
                    timeout: Duration::from_secs(1),
                },
                504,
                -32001,
            ),
            (
                Error::Remote {
                    service: "a.b.c".into(),
                    method: "m".into(),
                    kind: "ZeroDivisionError".into(),
                    message: "division by zero".into(),
                },
                422,
                -32002,
            ),
            (
                Error::CallInterrupted {
                    service: "a.b.c".into(),
                    method: "m".into(),
                    reason: "gone".into(),
                },
                502,
                -32003,
            ),
            (
                Error::Codec {
                    context: "c".into(),
                    reason: "secret detail".into(),
                },
                500,
                -32603,
            ),
        ];
        for (error, status, rpc) in cases {
            let failure = CallError::from(error);
            assert_eq!(failure.status().as_u16(), status, "{failure:?}");
            assert_eq!(failure.rpc_code(), rpc, "{failure:?}");
        }
        let internal = CallError::from(Error::Codec {
            context: "c".into(),
            reason: "secret".into(),
        });
        assert!(
            !internal.message().contains("secret"),
            "details stay in the log"
        );
    }

    #[test]
    fn a_service_error_carries_its_type_and_value() {
        let failure = CallError::Service {
            kind: "DivError.DivisionByZero".into(),
            message: None,
            value: Some(json!("DivisionByZero")),
        };
        assert_eq!(
            failure.rest_body(),
            json!({"error": {
                "code": "service_error",
                "message": "the service answered with an error (DivError.DivisionByZero)",
                "type": "DivError.DivisionByZero",
                "value": "DivisionByZero",
            }})
        );
        assert_eq!(
            failure.data(),
            Some(json!({"type": "DivError.DivisionByZero", "value": "DivisionByZero"}))
        );
    }
}
