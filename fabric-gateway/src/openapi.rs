//! `GET /openapi.json`: an OpenAPI 3.1 document of the live contracts, one REST operation
//! per method of each service that announces a contract.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use fabric_core::{Contract, ServiceFilter};
use serde_json::{json, Map, Value};

use crate::gateway::Gateway;
use crate::schema;

pub(crate) async fn handle(State(gateway): State<Gateway>) -> Json<Value> {
    let services = gateway
        .inner
        .fabric
        .list_services(&ServiceFilter::any())
        .unwrap_or_default();
    // One entry per address: the instances of a clique share it.
    let mut contracts = BTreeMap::new();
    for info in &services {
        if let Some(contract) = info.contract() {
            let a = &info.address;
            contracts
                .entry((
                    a.domain().to_owned(),
                    a.service_type().to_owned(),
                    a.service_id().to_owned(),
                ))
                .or_insert_with(|| contract.clone());
        }
    }
    Json(document(&contracts, gateway.inner.config.token.is_some()))
}

/// The document for `contracts`, by address; `secured` adds the bearer scheme.
pub(crate) fn document(
    contracts: &BTreeMap<(String, String, String), Contract>,
    secured: bool,
) -> Value {
    let mut paths = Map::new();
    for ((domain, service_type, id), contract) in contracts {
        for method in contract.methods() {
            let path = format!("/services/{domain}/{service_type}/{id}/{}", method.name());
            let mut properties = Map::new();
            let mut required = Vec::new();
            for param in method.params() {
                let mut schema = schema::of(param.type_name());
                schema["x-rust-type"] = json!(param.type_name());
                properties.insert(param.name().to_owned(), schema);
                if !schema::is_option(param.type_name()) {
                    required.push(json!(param.name()));
                }
            }
            let mut result = schema::of(method.return_type());
            result["x-rust-type"] = json!(method.return_type());
            let summary = method.summary();
            let error = |description: &str| {
                json!({"description": description, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}})
            };
            let mut responses = json!({
                "200": {"description": "the method's result", "content": {
                    "application/json": {"schema": result}}},
                "400": error("the arguments do not fit the method"),
                "404": error("the service has no such method"),
                "502": error("the connection to the broker broke under the call"),
                "503": error("no instance of the service is running"),
                "504": error("no reply within the timeout"),
            });
            if method.is_fallible() {
                responses["422"] = error("the method's own error: its type and value");
            }
            let mut operation = json!({
                "operationId": format!("{domain}.{service_type}.{id}.{}", method.name()),
                "tags": [format!("{domain}/{service_type}/{id}")],
                "summary": if summary.is_empty() { method.to_string() } else { summary },
                "description": format!("`{method}`\n\n{}", method.doc_text()),
                "parameters": [{
                    "name": "timeout", "in": "query", "required": false,
                    "description": "the call's timeout (500ms, 5s), capped by the gateway's maximum",
                    "schema": {"type": "string"},
                }],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                }}}},
                "responses": responses,
            });
            if method.is_idempotent() {
                operation["x-idempotent"] = json!(true);
            }
            paths.insert(path, json!({"post": operation}));
        }
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "fabric services",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The live services of a fabric, from the contracts in their keep-alives.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "value": {},
                },
            }},
        }}},
    });
    if secured {
        document["components"]["securitySchemes"] =
            json!({"bearer": {"type": "http", "scheme": "bearer"}});
        document["security"] = json!([{"bearer": []}]);
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_core::MethodContract;

    #[test]
    fn one_operation_per_method() {
        let contract = Contract::new("Calc")
            .method(
                MethodContract::new("subtract")
                    .param("minuend", "i64")
                    .param("subtrahend", "Option<i64>")
                    .returns("i64")
                    .doc("Subtracts."),
            )
            .method(
                MethodContract::new("divide")
                    .param("a", "f64")
                    .param("b", "f64")
                    .returns("Result<f64, DivError>")
                    .fallible(true),
            );
        let mut contracts = BTreeMap::new();
        contracts.insert(("d".into(), "calc".into(), "c1".into()), contract);
        let doc = document(&contracts, true);
        let op = &doc["paths"]["/services/d/calc/c1/subtract"]["post"];
        assert_eq!(op["summary"], "Subtracts.");
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["minuend"]));
        assert_eq!(body["properties"]["minuend"]["type"], "integer");
        assert!(op["responses"].get("422").is_none());
        let divide = &doc["paths"]["/services/d/calc/c1/divide"]["post"];
        assert_eq!(
            divide["responses"]["200"]["content"]["application/json"]["schema"]["type"],
            "number"
        );
        assert!(divide["responses"].get("422").is_some());
        assert_eq!(doc["security"], json!([{"bearer": []}]));
    }
}
