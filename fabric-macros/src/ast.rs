//! The service as the macro sees it: a small AST over syn's, keeping the original tokens for
//! spans.
//!
//! Parsing only finds what the shape of the trait must give (a trait, functions, named
//! arguments); it records what it cannot represent and carries on. The rules a service must
//! follow are checked afterwards, in `valid.rs`.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, Item, ItemTrait, Pat, PatType, Receiver, ReturnType, Signature, TraitItem,
    TraitItemFn, Type, Visibility,
};

use crate::ctxt::Ctxt;

/// A trait marked `#[fabric_service]`.
pub(crate) struct Service<'a> {
    /// The trait as written, emitted unchanged.
    pub(crate) original: &'a ItemTrait,
    /// The trait's visibility, given to everything generated.
    pub(crate) vis: &'a Visibility,
    /// The trait's name, which is also the service's name on the wire.
    pub(crate) ident: &'a Ident,
    /// The trait's `#[cfg]` attributes, carried to everything generated from it.
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// The methods, in the trait's order.
    pub(crate) methods: Vec<Method<'a>>,
}

/// One method of the service: one kind of call.
pub(crate) struct Method<'a> {
    /// The method's signature, for the spans of validation errors.
    pub(crate) sig: &'a Signature,
    /// Its doc comments, carried to the client method.
    pub(crate) docs: Vec<&'a Attribute>,
    /// Its `#[cfg]` attributes, carried to everything generated from it.
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// The method's name as written, maybe raw (`r#type`).
    pub(crate) ident: &'a Ident,
    /// The `self` argument, if the method has one in first place.
    pub(crate) receiver: Option<&'a Receiver>,
    /// The arguments after `self`.
    pub(crate) args: Vec<Arg<'a>>,
    /// The return type; `None` for a method that returns `()` implicitly.
    pub(crate) output: Option<&'a Type>,
    /// `T` and `E` when the return type is written `Result<T, E>`: the method answers `Ok`
    /// with a value and `Err` with an error reply.
    pub(crate) fallible: Option<(&'a Type, &'a Type)>,
    /// The method's name on the wire: its name without `r#`.
    pub(crate) wire_name: String,
    /// The name of its arguments struct, `{Trait}{Method}Args`.
    pub(crate) args_struct: Ident,
    /// Marked `#[fabric(idempotent)]`: harmless to run twice, so the client may retry it.
    pub(crate) idempotent: bool,
}

/// One argument of a method: a field of its arguments struct.
pub(crate) struct Arg<'a> {
    /// The argument's name, maybe raw.
    pub(crate) ident: &'a Ident,
    /// Its type.
    pub(crate) ty: &'a Type,
}

impl<'a> Service<'a> {
    /// Reads the service from the attribute's arguments and the item it is on.
    ///
    /// Returns `None` when the item is not a trait; the reason is recorded in `cx`.
    pub(crate) fn from_syn(cx: &Ctxt, attr: &TokenStream, item: &'a Item) -> Option<Self> {
        if !attr.is_empty() {
            cx.error_spanned_by(
                attr,
                "#[fabric_service] takes no arguments: the service is named after its trait",
            );
        }
        let Item::Trait(item) = item else {
            not_a_trait(cx, item);
            return None;
        };
        let methods = item
            .items
            .iter()
            .filter_map(|trait_item| match trait_item {
                TraitItem::Fn(function) => Some(Method::from_syn(cx, &item.ident, function)),
                TraitItem::Const(constant) => {
                    cx.error_spanned_by(
                        constant,
                        "a service trait cannot have associated constants: a client talks to a \
                         remote service and has no implementation to read them from; make it a \
                         method, or a `const` outside the trait",
                    );
                    None
                }
                TraitItem::Type(ty) => {
                    cx.error_spanned_by(
                        ty,
                        "a service trait cannot have associated types: the client and the server \
                         must agree on one concrete type for every argument and result; name the \
                         type in the methods",
                    );
                    None
                }
                TraitItem::Macro(mac) => {
                    cx.error_spanned_by(
                        mac,
                        "a service trait cannot contain macro calls: #[fabric_service] reads the \
                         trait before they expand and cannot see the methods they would make; \
                         write the methods out",
                    );
                    None
                }
                other => {
                    cx.error_spanned_by(other, "expected a method in a service trait");
                    None
                }
            })
            .collect();
        Some(Service {
            original: item,
            vis: &item.vis,
            ident: &item.ident,
            cfgs: attrs_named(&item.attrs, "cfg"),
            methods,
        })
    }
}

impl<'a> Method<'a> {
    fn from_syn(cx: &Ctxt, service: &Ident, function: &'a TraitItemFn) -> Self {
        let sig = &function.sig;
        let mut receiver = None;
        let mut args = Vec::new();
        for (position, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(first) if position == 0 => receiver = Some(first),
                FnArg::Receiver(other) => {
                    cx.error_spanned_by(other, "`self` must be the first argument");
                }
                FnArg::Typed(arg) => args.extend(Arg::from_syn(cx, arg)),
            }
        }
        let wire_name = sig.ident.unraw().to_string();
        let idempotent = method_options(cx, &function.attrs);
        let args_struct = format_ident!(
            "{}{}Args",
            service,
            camel_case(&wire_name),
            span = sig.ident.span()
        );
        Method {
            sig,
            docs: attrs_named(&function.attrs, "doc"),
            cfgs: attrs_named(&function.attrs, "cfg"),
            ident: &sig.ident,
            receiver,
            args,
            output: match &sig.output {
                ReturnType::Default => None,
                ReturnType::Type(_, ty) => Some(ty),
            },
            fallible: match &sig.output {
                ReturnType::Default => None,
                ReturnType::Type(_, ty) => result_parts(ty),
            },
            wire_name,
            args_struct,
            idempotent,
        }
    }
}

/// `T` and `E` of a type written `Result<T, E>` (`std::result::Result<T, E>`, ...): a path
/// whose last segment is `Result` with two type arguments. Read from the tokens, as a macro
/// must: an alias with one argument (`io::Result<T>`) is not seen as a `Result`.
fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    let path = match ty {
        Type::Path(path) if path.qself.is_none() => &path.path,
        Type::Group(group) => return result_parts(&group.elem),
        Type::Paren(paren) => return result_parts(&paren.elem),
        _ => return None,
    };
    let last = path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    let mut types = arguments.args.iter().map(|argument| match argument {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(Some(ok)), Some(Some(err)), None) => Some((ok, err)),
        _ => None,
    }
}

/// The name of fabric's own method attribute, `#[fabric(...)]`.
const OPTIONS: &str = "fabric";

/// Reads a method's `#[fabric(...)]` attributes; returns whether it is marked idempotent.
fn method_options(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    let mut idempotent = false;
    for attr in attrs_named(attrs, OPTIONS) {
        let parsed = attr.parse_nested_meta(|option| {
            if option.path.is_ident("idempotent") {
                if idempotent {
                    return Err(option.error("`idempotent` is given twice"));
                }
                idempotent = true;
                Ok(())
            } else {
                Err(option.error(
                    "unknown fabric option: the one a method takes is `idempotent`, \
                     which lets the client retry a call that may not have completed",
                ))
            }
        });
        if let Err(error) = parsed {
            cx.push(error);
        }
    }
    idempotent
}

/// The item without fabric's `#[fabric(...)]` method attributes, which rustc would not know:
/// what the macro emits as the user's trait.
pub(crate) fn without_options(item: &Item) -> Item {
    let mut item = item.clone();
    if let Item::Trait(item) = &mut item {
        for trait_item in &mut item.items {
            if let TraitItem::Fn(function) = trait_item {
                function.attrs.retain(|attr| !attr.path().is_ident(OPTIONS));
            }
        }
    }
    item
}

/// The primitive scalar types, by name: what a client method takes by value as declared.
const SCALARS: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32",
    "f64", "bool", "char",
];

impl<'a> Arg<'a> {
    /// Whether the client method takes the argument by value as declared, rather than as
    /// `impl fabric_core::Arg<T>`: a primitive scalar, written as its bare name (`i64`), which
    /// lending would not spare a copy, and whose literals (`5`) need the declared type to be
    /// typed. Read from the tokens: an alias of a scalar is lent like any other type.
    pub(crate) fn by_value(&self) -> bool {
        let mut ty = self.ty;
        while let Type::Group(group) = ty {
            ty = &group.elem;
        }
        match ty {
            Type::Path(path) if path.qself.is_none() => path
                .path
                .get_ident()
                .is_some_and(|ident| SCALARS.iter().any(|scalar| ident == scalar)),
            _ => false,
        }
    }

    /// The argument, if it is a plain name (`x: i64` or `mut x: i64`).
    fn from_syn(cx: &Ctxt, arg: &'a PatType) -> Option<Self> {
        match &*arg.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => Some(Arg {
                ident: &pat.ident,
                ty: &arg.ty,
            }),
            pat => {
                cx.error_spanned_by(
                    pat,
                    "expected an argument name, found a pattern: each argument becomes a field \
                     of the arguments struct and a keyword argument for Python callers, so it \
                     needs a plain name such as `point: (i32, i32)`",
                );
                None
            }
        }
    }
}

/// The attributes whose path is the single identifier `name`.
fn attrs_named<'a>(attrs: &'a [Attribute], name: &str) -> Vec<&'a Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident(name))
        .collect()
}

/// Reports an item other than a trait, pointing at its keyword and name.
fn not_a_trait(cx: &Ctxt, item: &Item) {
    fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
        quote!(#keyword #name)
    }
    let (head, what) = match item {
        Item::Struct(s) => (head(&s.struct_token, &s.ident), "a struct"),
        Item::Enum(e) => (head(&e.enum_token, &e.ident), "an enum"),
        Item::Union(u) => (head(&u.union_token, &u.ident), "a union"),
        Item::Fn(f) => (head(&f.sig.fn_token, &f.sig.ident), "a function"),
        Item::Mod(m) => (head(&m.mod_token, &m.ident), "a module"),
        Item::Type(t) => (head(&t.type_token, &t.ident), "a type alias"),
        Item::TraitAlias(t) => (head(&t.trait_token, &t.ident), "a trait alias"),
        Item::Const(c) => (head(&c.const_token, &c.ident), "a constant"),
        Item::Static(s) => (head(&s.static_token, &s.ident), "a static"),
        Item::Impl(i) => {
            cx.error_spanned_by(
                head(&i.impl_token, &i.self_ty),
                "#[fabric_service] goes on the trait's declaration, not on an impl block: the \
                 client and the server are generated from the trait",
            );
            return;
        }
        other => (other.to_token_stream(), "this item"),
    };
    cx.error_spanned_by(
        head,
        format_args!(
            "#[fabric_service] goes on a trait, not on {what}: the trait's methods are the calls \
             the service answers"
        ),
    );
}

/// `do_thing` → `DoThing`: the method's part of its arguments struct's name.
///
/// Every `_`-separated word gets an upper-case first letter and keeps the rest as written, so
/// `get_HTTP` gives `GetHTTP`; empty words vanish, so `foo__bar` and `foo_bar` both give
/// `FooBar` (validation reports such a clash).
pub(crate) fn camel_case(name: &str) -> String {
    name.split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            let first = chars.next().into_iter().flat_map(char::to_uppercase);
            first.chain(chars)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(item: Item) -> (Option<Vec<String>>, syn::Result<()>) {
        let cx = Ctxt::new();
        let names = Service::from_syn(&cx, &TokenStream::new(), &item).map(|service| {
            service
                .methods
                .iter()
                .map(|m| format!("{} {}", m.wire_name, m.args_struct))
                .collect()
        });
        (names, cx.check())
    }

    fn messages(result: syn::Result<()>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn only_bare_scalars_are_taken_by_value() {
        let item: Item = syn::parse_quote! {
            trait Shapes {
                fn f(&self, a: i64, b: f64, c: bool, d: char, e: usize, f: String, g: Bytes,
                     h: &str, i: core::primitive::i64, j: Id, k: (i64, i64), l: Option<u8>);
            }
        };
        let cx = Ctxt::new();
        let service = Service::from_syn(&cx, &TokenStream::new(), &item).unwrap();
        cx.check().unwrap();
        let by_value: Vec<bool> = service.methods[0].args.iter().map(Arg::by_value).collect();
        let expected = [
            true, true, true, true, true, false, false, false, false, false, false, false,
        ];
        assert_eq!(by_value, expected);
    }

    #[test]
    fn camel_cases_method_names() {
        assert_eq!(camel_case("multiply"), "Multiply");
        assert_eq!(camel_case("do_thing"), "DoThing");
        assert_eq!(camel_case("foo__bar"), "FooBar");
        assert_eq!(camel_case("_private"), "Private");
        assert_eq!(camel_case("trailing_"), "Trailing");
        assert_eq!(camel_case("get_HTTP"), "GetHTTP");
        assert_eq!(camel_case("v2_api"), "V2Api");
        assert_eq!(camel_case("élan_vital"), "ÉlanVital");
    }

    #[test]
    fn names_wire_methods_and_args_structs() {
        let (names, result) = service(syn::parse_quote! {
            pub trait Store {
                fn put_item(&self, key: String, value: Vec<u8>);
                fn r#type(&self, r#in: String) -> String;
                fn len(&self) -> u64;
            }
        });
        result.unwrap();
        assert_eq!(
            names.unwrap(),
            [
                "put_item StorePutItemArgs",
                "type StoreTypeArgs",
                "len StoreLenArgs"
            ]
        );
    }

    #[test]
    fn keeps_docs_cfgs_receiver_and_args() {
        let item: ItemTrait = syn::parse_quote! {
            pub trait Store {
                /// Stores.
                #[cfg(unix)]
                #[allow(unused)]
                fn put(&self, key: String, mut value: Vec<u8>) -> bool;
                fn ping(&self);
            }
        };
        let item = Item::Trait(item);
        let cx = Ctxt::new();
        let service = Service::from_syn(&cx, &TokenStream::new(), &item).unwrap();
        cx.check().unwrap();
        let put = &service.methods[0];
        assert_eq!(put.docs.len(), 1);
        assert_eq!(put.cfgs.len(), 1);
        assert!(put.receiver.is_some());
        let args: Vec<String> = put.args.iter().map(|a| a.ident.to_string()).collect();
        assert_eq!(args, ["key", "value"]);
        assert!(put.output.is_some());
        assert!(service.methods[1].output.is_none());
    }

    #[test]
    fn reports_every_shape_error_at_once() {
        let (_, result) = service(syn::parse_quote! {
            pub trait Store {
                type Key;
                const N: usize;
                fn pair(&self, (a, b): (i32, i32), _: u8) -> i32 { a + b }
            }
        });
        let messages = messages(result);
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].contains("associated types"));
        assert!(messages[1].contains("associated constants"));
        assert!(messages[2].contains("found a pattern"));
        assert!(messages[3].contains("found a pattern"));
    }

    #[test]
    fn rejects_other_items_and_arguments() {
        let (names, result) = service(syn::parse_quote!(
            struct NotATrait;
        ));
        assert!(names.is_none());
        let messages = messages(result);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("not on a struct"), "{messages:?}");

        let cx = Ctxt::new();
        let item: Item = syn::parse_quote!(
            trait Fine {}
        );
        assert!(Service::from_syn(&cx, &quote!(name = "x"), &item).is_some());
        assert!(messages_of(cx).contains("takes no arguments"));
    }

    fn messages_of(cx: Ctxt) -> String {
        messages(cx.check()).join("\n")
    }
}
