//! `fabric call DOMAIN/TYPE/ID METHOD [NAME=VALUE ...]`: one JSON call, its result on stdout.

use fabric_core::{MethodContract, RpcClient};
use serde_json::{Map, Value};

use crate::cli::CallArgs;
use crate::commands::describe;
use crate::connect;
use crate::failure::{Code, Failure};
use crate::target;

pub fn run(url: &str, args: CallArgs) -> Result<(), Failure> {
    let address = target::parse(&args.service)?;
    let mut arguments = arguments(args.json_args.as_deref(), &args.args)?;
    let fabric = connect::fabric(url, address.domain(), !args.no_check)?;
    if !args.no_check {
        // Checked against the contract when the service announces one; a service that
        // announces none (amqp-fabric) is called with the arguments as given.
        if let Some(info) = describe::heard(&fabric, &address, args.wait)? {
            if let Some(contract) = info.contract() {
                let Some(method) = contract.find(&args.method) else {
                    let names: Vec<&str> = contract.methods().iter().map(|m| m.name()).collect();
                    return Err(Failure::new(
                        Code::UnknownMethod,
                        format!(
                            "service {} has no method `{}`; its methods: {}",
                            args.service,
                            args.method,
                            names.join(", ")
                        ),
                    ));
                };
                check(method, &mut arguments, &args.args)?;
            }
        }
    }
    let client = RpcClient::new(
        &fabric,
        address.domain(),
        address.service_type(),
        address.service_id(),
    )?
    .with_codec(fabric_core::Codec::Json)
    .with_timeout(args.timeout);
    match client.call_fallible::<_, Value, Value>(&args.method, &arguments)? {
        Ok(value) => {
            println!("{value}");
            Ok(())
        }
        Err(error) => Err(Failure::new(
            Code::ServiceError,
            format!(
                "{}::{} answered with an error: {error}",
                address.fqn(),
                args.method
            ),
        )),
    }
}

/// The call's keyword arguments: `--args` (a JSON object), then each NAME=VALUE, whose VALUE
/// is read as JSON, else taken as a string.
fn arguments(json: Option<&str>, pairs: &[String]) -> Result<Map<String, Value>, Failure> {
    let mut arguments = match json {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Failure::usage(
                    "--args must be a JSON object of keyword arguments, e.g. '{\"x\": 5}'",
                ))
            }
            Err(e) => return Err(Failure::usage(format!("--args is not JSON: {e}"))),
        },
    };
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "argument `{pair}` has no `=`: write NAME=VALUE, e.g. x=5"
            )));
        };
        if name.is_empty() {
            return Err(Failure::usage(format!("argument `{pair}` has no name")));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        arguments.insert(name.to_owned(), value);
    }
    Ok(arguments)
}

/// Checks `arguments` against `method`'s parameters: every name known, every parameter given
/// (but an `Option`), numbers, booleans and strings where the types say so. A NAME=VALUE
/// whose VALUE read as JSON but the parameter is a string is sent as the text given.
fn check(
    method: &MethodContract,
    arguments: &mut Map<String, Value>,
    pairs: &[String],
) -> Result<(), Failure> {
    let signature = || {
        let params: Vec<String> = method.params().iter().map(ToString::to_string).collect();
        format!("it takes ({})", params.join(", "))
    };
    let bad = |message: String| Failure::new(Code::BadArguments, message);
    for name in arguments.keys() {
        if method.param_named(name).is_none() {
            return Err(bad(format!(
                "`{}` has no parameter `{name}`: {}",
                method.name(),
                signature()
            )));
        }
    }
    for param in method.params() {
        let ty = param.type_name();
        let Some(value) = arguments.get_mut(param.name()) else {
            if is_option(ty) {
                continue;
            }
            return Err(bad(format!(
                "`{}` needs `{param}`: {}",
                method.name(),
                signature()
            )));
        };
        let given_as_text = pairs
            .iter()
            .rev()
            .find_map(|pair| pair.split_once('=').filter(|(n, _)| *n == param.name()))
            .map(|(_, text)| text);
        if is_string(ty) && !value.is_string() {
            if let Some(text) = given_as_text {
                *value = Value::String(text.to_owned());
            }
        }
        if let Some(expected) = mismatch(ty, value) {
            return Err(bad(format!(
                "`{}`: `{param}` must be {expected}, not {value}",
                method.name()
            )));
        }
    }
    Ok(())
}

fn is_option(ty: &str) -> bool {
    ty.starts_with("Option<") || ty.contains("::Option<")
}

fn is_string(ty: &str) -> bool {
    matches!(
        ty,
        "String" | "&str" | "std::string::String" | "::std::string::String"
    )
}

/// What the value should have been, when the type is a plain one it plainly is not.
fn mismatch(ty: &str, value: &Value) -> Option<&'static str> {
    let fits = match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => value.is_i64(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => value.is_u64(),
        "f32" | "f64" => value.is_number(),
        "bool" => value.is_boolean(),
        ty if is_string(ty) => value.is_string(),
        _ => return None,
    };
    if fits {
        return None;
    }
    Some(match ty {
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        ty if ty.starts_with('u') => "a whole number, not negative",
        ty if ty.starts_with('i') => "a whole number",
        _ => "a string",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn multiply() -> MethodContract {
        MethodContract::new("multiply")
            .param("x", "i64")
            .param("y", "i64")
            .returns("i64")
    }

    #[test]
    fn values_are_json_else_strings() {
        let args = arguments(
            Some(r#"{"x": 1, "z": [1]}"#),
            &pairs(&["x=5", "name=bob", "flag=true", "list=[1,2]", "empty="]),
        )
        .unwrap();
        assert_eq!(Value::Object(args.clone())["x"], 5);
        assert_eq!(args["name"], "bob");
        assert_eq!(args["flag"], true);
        assert_eq!(args["list"], serde_json::json!([1, 2]));
        assert_eq!(args["empty"], "");
        assert_eq!(args["z"], serde_json::json!([1]));
        assert_eq!(
            arguments(None, &pairs(&["x"])).unwrap_err().code,
            Code::Usage
        );
        assert_eq!(arguments(Some("[1]"), &[]).unwrap_err().code, Code::Usage);
        assert_eq!(arguments(Some("{"), &[]).unwrap_err().code, Code::Usage);
    }

    #[test]
    fn arguments_are_checked_against_the_contract() {
        let given = pairs(&["x=5", "y=7"]);
        let mut args = arguments(None, &given).unwrap();
        check(&multiply(), &mut args, &given).unwrap();

        let given = pairs(&["a=5", "y=7"]);
        let failure =
            check(&multiply(), &mut arguments(None, &given).unwrap(), &given).unwrap_err();
        assert_eq!(failure.code, Code::BadArguments);
        assert_eq!(
            failure.message,
            "`multiply` has no parameter `a`: it takes (x: i64, y: i64)"
        );
        let given = pairs(&["x=5"]);
        let failure =
            check(&multiply(), &mut arguments(None, &given).unwrap(), &given).unwrap_err();
        assert_eq!(
            failure.message,
            "`multiply` needs `y: i64`: it takes (x: i64, y: i64)"
        );
        let given = pairs(&["x=5", "y=seven"]);
        let failure =
            check(&multiply(), &mut arguments(None, &given).unwrap(), &given).unwrap_err();
        assert_eq!(
            failure.message,
            "`multiply`: `y: i64` must be a whole number, not \"seven\""
        );
    }

    #[test]
    fn strings_stay_as_written_and_options_may_be_left_out() {
        let greet = MethodContract::new("greet")
            .param("name", "String")
            .param("times", "Option<u8>");
        let given = pairs(&["name=42"]);
        let mut args = arguments(None, &given).unwrap();
        check(&greet, &mut args, &given).unwrap();
        assert_eq!(args["name"], "42");
    }
}
