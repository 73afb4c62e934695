//! JSON Schemas of Rust types as a contract writes them (`Option<Vec<u32>>`): primitives,
//! `Option`, sequences, maps and tuples are known; any other type is described by its name.

use serde_json::{json, Value};

/// A type split into its name (last path segment) and its generic arguments.
struct Parsed<'a> {
    name: &'a str,
    args: Vec<&'a str>,
}

/// Reads `std::collections::HashMap<String, Vec<u8>>` as `HashMap` with two arguments.
fn parse(ty: &str) -> Parsed<'_> {
    let ty = strip_reference(ty.trim());
    let (head, inner) = match (ty.find('<'), ty.rfind('>')) {
        (Some(open), Some(close)) if close > open => (&ty[..open], Some(&ty[open + 1..close])),
        _ => (ty, None),
    };
    let name = head.rsplit("::").next().unwrap_or(head).trim();
    Parsed {
        name,
        args: inner.map(split_top_level).unwrap_or_default(),
    }
}

/// `&'a mut T` → `T`.
fn strip_reference(mut ty: &str) -> &str {
    while let Some(rest) = ty.strip_prefix('&') {
        ty = rest.trim_start();
        if let Some(rest) = ty.strip_prefix('\'') {
            ty = rest
                .find(char::is_whitespace)
                .map_or("", |at| &rest[at..])
                .trim_start();
        }
        if let Some(rest) = ty.strip_prefix("mut ") {
            ty = rest.trim_start();
        }
    }
    ty
}

/// Splits `A, B<C, D>, (E, F)` at its top-level commas.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (at, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

/// Whether the type may be left out of a call: `Option<T>`.
pub(crate) fn is_option(ty: &str) -> bool {
    parse(ty).name == "Option"
}

/// The error type of a `Result<T, E>` return type: `E`.
pub(crate) fn error_type_of(ty: &str) -> Option<&str> {
    let parsed = parse(ty);
    (parsed.name == "Result" && parsed.args.len() == 2).then(|| parsed.args[1])
}

/// Whether serde gives values of the type no name (strings, numbers, sequences ...): what
/// fabric calls an error of type `Error`.
pub(crate) fn is_unnamed(ty: &str) -> bool {
    let ty = strip_reference(ty.trim());
    ty.starts_with('(') || ty.starts_with('[') || primitive(parse(ty).name).is_some() || {
        let name = parse(ty).name;
        matches!(
            name,
            "Vec" | "VecDeque" | "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet"
        )
    }
}

fn primitive(name: &str) -> Option<Value> {
    Some(match name {
        "i8" | "i16" | "i32" => json!({"type": "integer", "format": "int32"}),
        "i64" | "isize" | "i128" => json!({"type": "integer", "format": "int64"}),
        "u8" | "u16" | "u32" => json!({"type": "integer", "format": "int32", "minimum": 0}),
        "u64" | "usize" | "u128" => json!({"type": "integer", "format": "int64", "minimum": 0}),
        "f32" => json!({"type": "number", "format": "float"}),
        "f64" => json!({"type": "number", "format": "double"}),
        "bool" => json!({"type": "boolean"}),
        "String" | "str" | "Cow" => json!({"type": "string"}),
        "char" => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        "()" => json!({"type": "null"}),
        "Value" => json!({}),
        _ => return None,
    })
}

/// The JSON Schema of `ty`, as far as its text tells. A `Result<T, E>` is `T`'s: the error
/// comes as an error reply.
pub(crate) fn of(ty: &str) -> Value {
    let trimmed = strip_reference(ty.trim());
    if trimmed == "()" {
        return json!({"type": "null"});
    }
    if let Some(inner) = trimmed.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let items: Vec<Value> = split_top_level(inner).into_iter().map(of).collect();
        let count = items.len();
        return json!({"type": "array", "prefixItems": items, "minItems": count, "maxItems": count});
    }
    if let Some(inner) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let item = inner.split(';').next().unwrap_or(inner);
        return json!({"type": "array", "items": of(item)});
    }
    let parsed = parse(trimmed);
    if let Some(schema) = primitive(parsed.name) {
        return schema;
    }
    let arg = |n: usize| parsed.args.get(n).copied().map_or(json!({}), of);
    match parsed.name {
        "Option" => json!({"anyOf": [arg(0), {"type": "null"}]}),
        "Box" | "Arc" | "Rc" => arg(0),
        "Result" => arg(0),
        "Vec" | "VecDeque" | "LinkedList" => json!({"type": "array", "items": arg(0)}),
        "HashSet" | "BTreeSet" => json!({"type": "array", "items": arg(0), "uniqueItems": true}),
        "HashMap" | "BTreeMap" => json!({"type": "object", "additionalProperties": arg(1)}),
        _ => json!({"description": format!("Rust type `{}`", ty.trim())}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_of_the_types_a_contract_writes() {
        assert_eq!(of("i64"), json!({"type": "integer", "format": "int64"}));
        assert_eq!(of("&str"), json!({"type": "string"}));
        assert_eq!(of("()"), json!({"type": "null"}));
        assert_eq!(
            of("Option<bool>"),
            json!({"anyOf": [{"type": "boolean"}, {"type": "null"}]})
        );
        assert_eq!(
            of("std::vec::Vec<f64>"),
            json!({"type": "array", "items": {"type": "number", "format": "double"}})
        );
        assert_eq!(
            of("HashMap<String, Vec<u8>>"),
            json!({"type": "object", "additionalProperties": {"type": "array", "items":
                {"type": "integer", "format": "int32", "minimum": 0}}})
        );
        assert_eq!(of("Result<u32, DivError>")["minimum"], 0);
        assert_eq!(
            of("(i32, String)")["prefixItems"][1],
            json!({"type": "string"})
        );
        assert_eq!(of("Order"), json!({"description": "Rust type `Order`"}));
        assert_eq!(of("&'a [u8]")["type"], "array");
    }

    #[test]
    fn options_errors_and_names() {
        assert!(is_option("Option<u8>"));
        assert!(is_option("std::option::Option<u8>"));
        assert!(!is_option("u8"));
        assert_eq!(error_type_of("Result<i64, DivError>"), Some("DivError"));
        assert_eq!(error_type_of("Result<Vec<u8>, Box<Err>>"), Some("Box<Err>"));
        assert_eq!(error_type_of("i64"), None);
        assert!(is_unnamed("String"));
        assert!(is_unnamed("Vec<String>"));
        assert!(!is_unnamed("DivError"));
    }
}
