//! The rules a service trait must follow, checked on the parsed [`Service`].
//!
//! Every broken rule is recorded in the [`Ctxt`] at the offending token, with what is expected
//! and why, and checking goes on so that all of them are reported in one compile.

use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Lifetime, Type, TypeImplTrait, TypePath, TypeReference, TypeTraitObject};

use crate::ast::{Method, Service};
use crate::ctxt::Ctxt;

/// Names every fabric service answers on its own.
const BUILT_IN: &[&str] = &["health_check"];

/// Inherent methods of the generated `{Trait}Client`, which a trait method of the same name
/// would clash with.
const CLIENT_METHODS: &[&str] = &[
    "connect",
    "connect_checked",
    "contract",
    "from_rpc",
    "local",
    "with_timeout",
    "with_codec",
    "with_retry",
    "rpc",
];

/// Checks every rule and records what is broken.
pub(crate) fn check(cx: &Ctxt, service: &Service) {
    check_trait(cx, service);
    for method in &service.methods {
        check_signature(cx, method);
        check_receiver(cx, method);
        for arg in &method.args {
            TypeCheck::new(cx, Position::Argument).visit_type(arg.ty);
        }
        if let Some(output) = method.output {
            TypeCheck::new(cx, Position::Result).visit_type(output);
        }
        check_name(cx, service, method);
    }
    check_distinct(cx, service);
}

fn check_trait(cx: &Ctxt, service: &Service) {
    let generics = &service.original.generics;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            &generics.params,
            "a service trait cannot have generic parameters: the client and the server must \
             agree on one concrete type for every argument and result; name the types in the \
             methods",
        );
    }
    if let Some(where_clause) = &generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "a service trait cannot have a where clause; to require `Send` or similar of \
             every implementation, write a supertrait: `trait Service: Send`",
        );
    }
}

/// Everything about the signature but the receiver and the types.
fn check_signature(cx: &Ctxt, method: &Method) {
    let sig = method.sig;
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "a service method cannot be `const`");
    }
    if let Some(asyncness) = &sig.asyncness {
        cx.error_spanned_by(
            asyncness,
            "a service method cannot be `async`: fabric servers run methods on a blocking thread \
             pool; write a blocking `fn`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "a service method cannot be `unsafe`: a remote caller cannot uphold its safety \
             contract",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            "a service method cannot name an ABI: fabric's generated Rust code calls it",
        );
    }
    if !sig.generics.params.is_empty() {
        let only_lifetimes = sig.generics.lifetimes().count() == sig.generics.params.len();
        let message = if only_lifetimes {
            "a service method cannot have lifetime parameters: its arguments and result cross \
             the wire and arrive as owned values, so they cannot borrow"
        } else {
            "a service method cannot be generic: the server decodes every call into concrete \
             types, so each argument and the result need one concrete type"
        };
        cx.error_spanned_by(&sig.generics.params, message);
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "a service method cannot have a where clause: every service method can be called \
             on every implementation",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(
            variadic,
            "a service method cannot be variadic: every argument needs a name and a type",
        );
    }
}

fn check_receiver(cx: &Ctxt, method: &Method) {
    let Some(receiver) = method.receiver else {
        cx.push(syn::Error::new(
            method.sig.paren_token.span.join(),
            "expected `&self` as the first argument: a service method runs on the implementation \
             the server holds, and a function without `self` has none to run on",
        ));
        return;
    };
    let message = match &receiver.reference {
        _ if receiver.colon_token.is_some() => {
            "expected `&self`: the server keeps one implementation for all its workers and \
             lends it to each call as `&self`, so other kinds of `self` cannot be served"
        }
        None => {
            "expected `&self`, found `self` by value: the server keeps one implementation for \
             all its workers and lends it to each call as `&self`"
        }
        Some(_) if receiver.mutability.is_some() => {
            "expected `&self`, found `&mut self`: many workers call a service at once, so its \
             methods take `&self`; keep mutable state behind a `Mutex` or an atomic"
        }
        Some((_, Some(_))) => {
            "expected `&self`, found a lifetime on `self`: the server lends the implementation \
             for the length of one call; drop the lifetime"
        }
        Some((_, None)) => return,
    };
    cx.error_spanned_by(receiver, message);
}

fn check_name(cx: &Ctxt, service: &Service, method: &Method) {
    let name = method.wire_name.as_str();
    if BUILT_IN.contains(&name) {
        cx.error_spanned_by(
            method.ident,
            format_args!(
                "`{name}` is built into every fabric service, and every client has a \
                 `{name}` method to call it; rename this method"
            ),
        );
    } else if CLIENT_METHODS.contains(&name) {
        cx.error_spanned_by(
            method.ident,
            format_args!(
                "a method named `{name}` would clash with `{}Client::{name}`, which \
                 #[fabric_service] generates; rename this method",
                service.ident,
            ),
        );
    } else if name == "clone" {
        cx.error_spanned_by(
            method.ident,
            format_args!(
                "a method named `clone` would hide `Clone::clone` on `{}Client`, so that \
                 `client.clone()` made a remote call; rename this method",
                service.ident,
            ),
        );
    }
}

/// No two methods may share a name, or the name of their arguments struct.
///
/// Methods under different `#[cfg]`s may: at most one of them exists after `cfg` is applied,
/// and rustc reports them if not.
fn check_distinct(cx: &Ctxt, service: &Service) {
    let cfg_key = |method: &Method| {
        method
            .cfgs
            .iter()
            .map(|cfg| cfg.to_token_stream().to_string())
            .collect::<Vec<_>>()
    };
    for (index, method) in service.methods.iter().enumerate() {
        let earlier = service.methods[..index]
            .iter()
            .filter(|earlier| cfg_key(earlier) == cfg_key(method));
        for earlier in earlier {
            if earlier.wire_name == method.wire_name {
                cx.error_spanned_by(
                    method.ident,
                    format_args!(
                        "a second method named `{}`: each method is one queue of the service \
                         and needs a name of its own",
                        method.wire_name,
                    ),
                );
                break;
            }
            if earlier.args_struct == method.args_struct {
                cx.error_spanned_by(
                    method.ident,
                    format_args!(
                        "`{}` and `{}` would both have the arguments struct `{}`; rename one \
                         of them",
                        earlier.ident, method.ident, method.args_struct,
                    ),
                );
                break;
            }
        }
    }
}

/// Where a type appears, for the wording of errors.
#[derive(Clone, Copy)]
enum Position {
    Argument,
    Result,
}

impl Position {
    /// Why a value in this position must be owned.
    fn crossing(self) -> &'static str {
        match self {
            Position::Argument => "arguments cross the wire and arrive as owned values",
            Position::Result => "the result crosses the wire and arrives as an owned value",
        }
    }

    /// The side that decodes the value and so must know its type.
    fn decoder(self) -> &'static str {
        match self {
            Position::Argument => "the server",
            Position::Result => "the client",
        }
    }
}

/// Walks an argument or result type for what cannot cross the wire as it is written: borrows,
/// `impl Trait`, `dyn Trait` and `Self`. Whether the type is serializable is left to the
/// compiler, through the wire assertions the expansion emits.
struct TypeCheck<'c> {
    cx: &'c Ctxt,
    position: Position,
}

impl<'c> TypeCheck<'c> {
    fn new(cx: &'c Ctxt, position: Position) -> Self {
        TypeCheck { cx, position }
    }

    fn reference(&self, reference: &TypeReference) {
        let fix = match &*reference.elem {
            Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
                "use `String` instead of `&str`"
            }
            Type::Slice(_) => "use a `Vec` instead of a slice",
            _ => "drop the `&` and use the value",
        };
        let (found, lent) = match self.position {
            Position::Argument => (
                "found a reference",
                " (the client method still takes it by reference: see `fabric_core::Arg`)",
            ),
            Position::Result => ("found a reference in the result", ""),
        };
        self.cx.error_spanned_by(
            reference,
            format_args!(
                "expected an owned type, {found}: {}; {fix}{lent}",
                self.position.crossing(),
            ),
        );
    }
}

impl<'ast> Visit<'ast> for TypeCheck<'_> {
    // Each check reports the outermost offending type and does not look inside it, so `&&str`
    // is one error, not two.
    fn visit_type_reference(&mut self, reference: &'ast TypeReference) {
        self.reference(reference);
    }

    fn visit_type_impl_trait(&mut self, impl_trait: &'ast TypeImplTrait) {
        self.cx.error_spanned_by(
            impl_trait,
            format_args!(
                "expected a concrete type, found `impl Trait`: {} must know the type to decode \
                 the value; name it",
                self.position.decoder(),
            ),
        );
    }

    fn visit_type_trait_object(&mut self, object: &'ast TypeTraitObject) {
        self.cx.error_spanned_by(
            object,
            format_args!(
                "expected a concrete type, found a trait object: {} must know the type to \
                 decode the value; name a concrete type, or an enum of the possible ones",
                self.position.decoder(),
            ),
        );
    }

    fn visit_type_path(&mut self, path: &'ast TypePath) {
        let names_self = path.qself.is_none()
            && path
                .path
                .segments
                .first()
                .is_some_and(|segment| segment.ident == "Self");
        if names_self {
            self.cx.error_spanned_by(
                path,
                "expected a concrete type, found `Self`: `Self` is the implementation, which \
                 stays on the server; name the type",
            );
        } else {
            visit::visit_type_path(self, path);
        }
    }

    fn visit_lifetime(&mut self, lifetime: &'ast Lifetime) {
        // `Cow<'static, str>` owns what it holds when it is decoded, so `'static` is fine.
        if lifetime.ident != "static" {
            self.cx.error_spanned_by(
                lifetime,
                format_args!(
                    "expected an owned type, found the lifetime `{lifetime}`: {}, which \
                     cannot borrow",
                    self.position.crossing(),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::TokenStream;
    use syn::Item;

    /// The messages for a trait, in the order they are reported.
    fn errors(item: Item) -> Vec<String> {
        let cx = Ctxt::new();
        if let Some(service) = Service::from_syn(&cx, &TokenStream::new(), &item) {
            check(&cx, &service);
        }
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn assert_one_error(item: Item, expected: &str) {
        let errors = errors(item);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains(expected),
            "{:?} lacks {expected:?}",
            errors[0]
        );
    }

    #[test]
    fn accepts_a_plain_service() {
        let errors = errors(syn::parse_quote! {
            pub trait Fine: Send + Sync {
                /// Docs.
                fn a(&self, x: i64, mut y: Vec<String>) -> Result<i64, String>;
                fn b(&self);
                fn c(&self, text: std::borrow::Cow<'static, str>) -> () { () }
                fn r#type(&self, r#in: Option<Box<u8>>);
                #[cfg(unix)]
                fn d(&self);
                #[cfg(not(unix))]
                fn d(&self);
            }
        });
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn receivers() {
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&mut self);
                }
            ),
            "found `&mut self`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(self);
                }
            ),
            "found `self` by value",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(self: Box<Self>);
                }
            ),
            "expected `&self`: the server keeps",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&'static self);
                }
            ),
            "found a lifetime on `self`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(x: u8);
                }
            ),
            "expected `&self` as the first argument",
        );
    }

    #[test]
    fn types() {
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self, s: &str);
                }
            ),
            "use `String` instead of `&str`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self, s: Vec<&mut [u8]>);
                }
            ),
            "use a `Vec` instead of a slice",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self) -> &&u8;
                }
            ),
            "found a reference in the result",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self, s: Cow<'_, str>);
                }
            ),
            "found the lifetime `'_`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self, s: impl Into<String>);
                }
            ),
            "the server must know the type",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self) -> Box<dyn Fn()>;
                }
            ),
            "the client must know the type",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self) -> Option<Self>;
                }
            ),
            "found `Self`",
        );
    }

    #[test]
    fn signatures() {
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    async fn f(&self);
                }
            ),
            "blocking thread pool",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    unsafe fn f(&self);
                }
            ),
            "cannot be `unsafe`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f<T>(&self, t: T);
                }
            ),
            "cannot be generic",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f<'a>(&self);
                }
            ),
            "cannot have lifetime parameters",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S<T> {
                    fn f(&self);
                }
            ),
            "trait cannot have generic parameters",
        );
    }

    #[test]
    fn names() {
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn health_check(&self) -> bool;
                }
            ),
            "built into every fabric service",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn r#connect(&self);
                }
            ),
            "clash with `SClient::connect`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn clone(&self);
                }
            ),
            "hide `Clone::clone`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn f(&self);
                    fn f(&self, x: u8);
                }
            ),
            "a second method named `f`",
        );
        assert_one_error(
            syn::parse_quote!(
                trait S {
                    fn foo_bar(&self);
                    fn foo__bar(&self);
                }
            ),
            "`foo_bar` and `foo__bar` would both have the arguments struct `SFooBarArgs`",
        );
    }

    #[test]
    fn reports_all_errors_together() {
        let errors = errors(syn::parse_quote! {
            trait S<T> {
                type X;
                async fn a(&mut self, s: &str);
                fn health_check(self, (a, b): (u8, u8));
            }
        });
        assert_eq!(errors.len(), 8, "{errors:#?}");
    }
}
