//! The `#[fabric_service]` attribute macro of fabric.
//!
//! Use it through `fabric_core`, which re-exports it as `fabric_core::fabric_service`: the
//! code it generates names `::fabric_core` and nothing else, so a crate that uses it needs
//! `fabric-core` as a dependency under that name, and no direct dependency on serde.
//!
//! The macro parses the trait into a small AST (`ast`), checks it against the rules of a
//! service (`valid`) and generates the client, the server and the wire types (`expand`). All
//! mistakes in a trait are reported together, each at the token that makes it.

mod ast;
mod contract;
mod ctxt;
mod expand;
mod valid;

use proc_macro::TokenStream;
use quote::quote;

/// Turns a trait into a fabric service: a typed client, a server and the wire types.
///
/// Use it as `fabric_core::fabric_service`; the crate documentation of `fabric-core` has an
/// example that is compiled with every test run. In short:
///
/// ```text
/// use fabric_core::fabric_service;
///
/// #[fabric_service]
/// pub trait Multiplier {
///     /// Multiplies two numbers.
///     fn multiply(&self, x: i64, y: i64) -> i64;
///     fn divide(&self, x: i64, y: i64) -> Result<i64, DivError>;
/// }
/// ```
///
/// The trait is kept as written, and beside it, with the trait's visibility:
///
/// - `MultiplierClient`: a cheap `Clone` handle with `connect(fabric, domain, service_type,
///   service_id)`, `from_rpc(rpc)`, `with_timeout(duration)`, `with_codec(codec)`,
///   `with_retry(policy)`,
///   `health_check()`, `rpc()`, and one method per trait method, with the same argument
///   names, that returns `fabric_core::Result<R>`, `R` being the method's return type. An
///   argument of a primitive scalar type (`i64`, `f64`, `bool`, `char`, ... written as its
///   bare name) is taken as declared; any other argument of type `T` as `impl
///   fabric_core::Arg<T>`: the `T` itself, a `&T`, or a borrowed form that encodes as a `T`
///   does (`&str` for `String`, `&[T]` for `Vec<T>`, `&[u8]` for `Bytes`), so a caller lends
///   what it keeps instead of cloning it: `client.put("key", &blob)`. The call's body is
///   encoded from the borrowed values, and is the same whichever form is passed.
/// - `MultiplierServer<T>`: `MultiplierServer::new(imp)` gives the `fabric_core::ServerBuilder`
///   that serves any `T: Multiplier + Send + Sync + 'static`; it implements
///   `fabric_core::Dispatch` with `SERVICE = "Multiplier"` and `METHODS = ["multiply",
///   "divide"]`.
/// - `MultiplierMultiplyArgs { x, y }` and `MultiplierDivideArgs { x, y }`: one struct per
///   method (`{Trait}{Method}Args`, the method's name in camel case, without `r#`), whose
///   fields are the method's arguments: the body of a call. In JSON it is the object of
///   keyword arguments that amqp-fabric's Python peers send.
///
/// A method whose return type is written `Result<T, E>` (with two type arguments, as the
/// macro reads tokens: a one-argument alias such as `io::Result<T>` is an ordinary value)
/// answers `Ok(v)` with the plain `v` and `Err(e)` with an amqp-fabric error reply that
/// carries `e`, so a Python caller gets a value or raises, and the client method returns
/// `fabric_core::Result<Result<T, E>>` with `e` intact. The error's message for people is its
/// `Display`, else its `Debug`, else its JSON. The generated arguments structs refuse
/// unknown fields, as a Python server refuses an unexpected keyword argument.
///
/// A method marked `#[fabric(idempotent)]` is one that does no harm when run twice. Its
/// client method retries a call that may not have completed (the connection broke while it was
/// in flight, the broker was unreachable, no reply came in time) under the client's
/// `fabric_core::RetryPolicy`, set with `with_retry(policy)`; every other method is sent once.
///
/// A method's doc comments go to its client method, and its `#[cfg]` attributes to everything
/// generated from it. A method is called on the wire by its name without `r#`.
///
/// # Rules
///
/// Every method takes `&self` (the server's workers share one implementation) and named
/// arguments of owned types that implement serde's `Serialize` and `Deserialize`, and so does
/// its result: no references, lifetimes, `impl Trait`, `dyn Trait` or `Self`. Methods are
/// plain blocking functions: not `async`, `unsafe` or generic. The trait has only methods, no
/// generics and no where clause; supertraits are allowed and bind the implementation only
/// (their methods are not served). `health_check` is built into every service, and a method
/// cannot be named like a method of the client (`connect`, `from_rpc`, `with_timeout`,
/// `with_codec`, `with_retry`, `rpc`, `clone`). A mistake is reported at the token that makes it, together
/// with every other mistake in the trait.
#[proc_macro_attribute]
pub fn fabric_service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::Item);
    expand::expand(attr.into(), &item)
        .unwrap_or_else(|error| {
            // The trait, as written, beside the errors: code that uses the trait then still
            // compiles, instead of adding errors of its own.
            let errors = error.into_compile_error();
            let item = ast::without_options(&item);
            quote!(#errors #item)
        })
        .into()
}
