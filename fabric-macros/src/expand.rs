//! What `#[fabric_service]` generates: one function per generated item, after tarpc's
//! `ServiceGenerator`.
//!
//! Every path is absolute (`::fabric_core::...`, `::core::...`) so that the expansion compiles
//! whatever the user imported, even under `#![no_implicit_prelude]`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Item, Visibility};

use crate::ast::{Method, Service};
use crate::contract;
use crate::ctxt::Ctxt;
use crate::valid;

/// Expands `#[fabric_service]` with arguments `attr` on `item`, or returns every mistake found.
pub(crate) fn expand(attr: TokenStream, item: &Item) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let service = Service::from_syn(&cx, &attr, item);
    if let Some(service) = &service {
        valid::check(&cx, service);
    }
    cx.check()?;
    let service = service.expect("Service::from_syn records why it found no service");
    Ok(ServiceGenerator::new(&service).generate())
}

/// The names shared by the generators, worked out once.
struct ServiceGenerator<'a> {
    service: &'a Service<'a>,
    vis: &'a Visibility,
    /// The trait's name.
    trait_ident: &'a Ident,
    /// The trait's name as a string: the service's name on the wire and in docs.
    trait_name: String,
    client: Ident,
    server: Ident,
    /// The trait's `#[cfg]`s, put before every generated item.
    cfgs: TokenStream,
}

impl<'a> ServiceGenerator<'a> {
    fn new(service: &'a Service<'a>) -> Self {
        let trait_ident = service.ident;
        let cfgs = &service.cfgs;
        ServiceGenerator {
            service,
            vis: service.vis,
            trait_ident,
            trait_name: trait_ident.unraw().to_string(),
            client: format_ident!("{}Client", trait_ident),
            server: format_ident!("{}Server", trait_ident),
            cfgs: quote!(#(#cfgs)*),
        }
    }

    fn generate(&self) -> TokenStream {
        let original =
            crate::ast::without_options(&syn::Item::Trait(self.service.original.clone()));
        let args_structs = self.args_structs();
        let client_struct = self.client_struct();
        let client_methods = self.client_methods();
        let server_struct = self.server_struct();
        let impl_dispatch = self.impl_dispatch();
        let wire_assertions = self.wire_assertions();
        // The wire assertions come first, so that rustc's first error about an argument or
        // result that cannot be serialized is the one in fabric's words.
        quote! {
            #original
            #wire_assertions
            #args_structs
            #client_struct
            #client_methods
            #server_struct
            #impl_dispatch
        }
    }

    /// `{Trait}{Method}Args`: the body of a call, one field per argument.
    fn args_structs(&self) -> TokenStream {
        let ServiceGenerator { vis, cfgs, .. } = self;
        let structs = self.service.methods.iter().map(|method| {
            let Method {
                args_struct,
                cfgs: method_cfgs,
                ..
            } = method;
            let doc = format!(
                " Arguments of [`{}`], the body of its calls.",
                self.method_path(method)
            );
            let fields = method.args.iter().map(|arg| {
                let (ident, ty) = (arg.ident, arg.ty);
                let doc = format!(" The argument `{}`.", ident.unraw());
                quote!(#[doc = #doc] #vis #ident: #ty)
            });
            quote! {
                #cfgs
                #(#method_cfgs)*
                #[doc = #doc]
                #[derive(
                    ::fabric_core::__private::serde::Serialize,
                    ::fabric_core::__private::serde::Deserialize,
                )]
                #[serde(crate = "::fabric_core::__private::serde")]
                // As a Python server refuses an unexpected keyword argument.
                #[serde(deny_unknown_fields)]
                // Deriving `Debug` would demand it of every argument type.
                #[allow(missing_debug_implementations)]
                #vis struct #args_struct {
                    #(#fields,)*
                }
            }
        });
        quote!(#(#structs)*)
    }

    /// `{Trait}Client`: a typed wrapper around an `RpcClient`.
    fn client_struct(&self) -> TokenStream {
        let ServiceGenerator {
            vis, cfgs, client, ..
        } = self;
        let doc = format!(
            " A client of the [`{}`] service: each method calls the method of the same name on \
             a remote instance.",
            self.trait_name
        );
        let doc2 = format!(
            " Make one with [`{client}::connect`]. Clones are cheap and share the connection."
        );
        quote! {
            #cfgs
            #[doc = #doc]
            #[doc = ""]
            #[doc = #doc2]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #client {
                rpc: ::fabric_core::RpcClient,
            }
        }
    }

    /// The client's own methods, then one method per trait method.
    fn client_methods(&self) -> TokenStream {
        let ServiceGenerator {
            vis,
            cfgs,
            client,
            server,
            trait_ident,
            ..
        } = self;
        let calls = self
            .service
            .methods
            .iter()
            .map(|method| self.client_method(method));
        let contract_fn = self.contract_fn();
        quote! {
            #cfgs
            impl #client {
                /// Makes a client of the instance `service_id` of the service type
                /// `service_type` in `domain`, calling over `fabric`'s connection.
                #vis fn connect(
                    fabric: &::fabric_core::Fabric,
                    domain: &::core::primitive::str,
                    service_type: &::core::primitive::str,
                    service_id: &::core::primitive::str,
                ) -> ::fabric_core::Result<Self> {
                    ::fabric_core::RpcClient::new(fabric, domain, service_type, service_id)
                        .map(Self::from_rpc)
                }

                /// Makes a client as [`connect`](Self::connect) does, after checking that the
                /// running service serves this client's [`contract`](Self::contract): waits for
                /// its keep-alive (at most the discovery TTL) and fails with
                /// `Error::ContractMismatch` naming the first difference, or
                /// `Error::NoSuchService` when none arrived. `fabric` must listen to
                /// keep-alives (`FabricConfig::keep_alive_listen(true)`).
                #vis fn connect_checked(
                    fabric: &::fabric_core::Fabric,
                    domain: &::core::primitive::str,
                    service_type: &::core::primitive::str,
                    service_id: &::core::primitive::str,
                ) -> ::fabric_core::Result<Self> {
                    let address =
                        ::fabric_core::ServiceAddress::new(domain, service_type, service_id)?;
                    fabric.check_contract(&address, &Self::contract())?;
                    Self::connect(fabric, domain, service_type, service_id)
                }

                #contract_fn

                /// A client whose calls run on `imp` in this process, with no broker: for
                /// tests. Each call goes through the real codec and dispatcher on a thread
                /// of its own, with its `CallContext` set and a panic caught, so it fails
                /// as it would over the broker. See `RpcClient::local`.
                #vis fn local<T>(imp: T) -> Self
                where
                    T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
                {
                    Self::from_rpc(::fabric_core::RpcClient::local(#server { imp }))
                }

                /// Wraps an untyped `RpcClient` that already points at an instance of the
                /// service.
                #vis fn from_rpc(rpc: ::fabric_core::RpcClient) -> Self {
                    #client { rpc }
                }

                /// A copy of this client whose calls wait at most `timeout` for a reply.
                #[must_use = "with_timeout returns a new client; the original is unchanged"]
                #vis fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                    #client { rpc: self.rpc.with_timeout(timeout) }
                }

                /// A copy of this client that encodes its calls with `codec`.
                #[must_use = "with_codec returns a new client; the original is unchanged"]
                #vis fn with_codec(&self, codec: ::fabric_core::Codec) -> Self {
                    #client { rpc: self.rpc.with_codec(codec) }
                }

                /// A copy of this client that retries the methods marked `#[fabric(idempotent)]`
                /// under `policy` when a call may not have completed. Other methods are never
                /// retried.
                #[must_use = "with_retry returns a new client; the original is unchanged"]
                #vis fn with_retry(&self, policy: ::fabric_core::RetryPolicy) -> Self {
                    #client { rpc: self.rpc.with_retry(policy) }
                }

                /// Asks the instance whether it is up: every fabric service answers this call.
                #vis fn health_check(&self) -> ::fabric_core::Result<::core::primitive::bool> {
                    self.rpc.health_check()
                }

                /// The untyped client underneath, for calls by method name.
                #vis fn rpc(&self) -> &::fabric_core::RpcClient {
                    &self.rpc
                }

                #(#calls)*
            }
        }
    }

    /// The client method that calls `method` remotely.
    fn client_method(&self, method: &Method) -> TokenStream {
        let Method {
            ident,
            cfgs,
            docs,
            wire_name,
            ..
        } = method;
        let vis = self.vis;
        // A scalar as declared; anything else as a form that encodes as it does, so that a
        // caller can lend it (`&str` for a `String`, `&[u8]` for `Bytes`).
        let params = method.args.iter().map(|arg| {
            let (ident, ty) = (arg.ident, arg.ty);
            if arg.by_value() {
                quote!(#ident: #ty)
            } else {
                quote_spanned!(ty.span()=> #ident: impl ::fabric_core::Arg<#ty>)
            }
        });
        let borrowed = self.lent_args(method);
        let output = match method.output {
            Some(ty) => quote!(#ty),
            None => quote!(()),
        };
        // A result type that cannot be decoded is reported at the type, not at the attribute.
        // Only a method the trait marks idempotent may be sent twice.
        let span = self.output_span(method);
        let call = match (method.fallible, method.idempotent) {
            (None, false) => quote_spanned!(span=> self.rpc.call(#wire_name, &args)),
            (None, true) => quote_spanned!(span=> self.rpc.call_idempotent(#wire_name, &args)),
            (Some((ok, err)), false) => quote_spanned! {span=>
                self.rpc.call_fallible::<_, #ok, #err>(#wire_name, &args)
            },
            (Some((ok, err)), true) => quote_spanned! {span=>
                self.rpc.retry_idempotent(#wire_name, || {
                    self.rpc.call_fallible::<_, #ok, #err>(#wire_name, &args)
                })
            },
        };
        let paragraph = if docs.is_empty() {
            None
        } else {
            Some(quote!(#[doc = ""]))
        };
        let mut doc = format!(
            " Calls [`{}`] on the remote instance.",
            self.method_path(method)
        );
        if !method.args.iter().all(|arg| arg.by_value()) {
            doc.push_str(
                " Takes each argument that is not a primitive scalar as declared or lent \
                 (`impl fabric_core::Arg<T>`: a `&T`, `&str` for a `String`, `&[T]` for a \
                 `Vec<T>`, `&[u8]` for `Bytes`), which encodes the same.",
            );
        }
        if method.idempotent {
            doc.push_str(
                " Idempotent: a call that may not have completed is tried again under the \
                 client's retry policy (see `with_retry`).",
            );
        }
        quote! {
            #(#cfgs)*
            #(#docs)*
            #paragraph
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            #vis fn #ident(&self, #(#params),*) -> ::fabric_core::Result<#output> {
                #borrowed
                #call
            }
        }
    }

    /// The body of a call from the client method's arguments, as `let args = ...;`: a struct
    /// of the same name and fields as `{Trait}{Method}Args`, generic over each field's type,
    /// each field holding what encodes as the argument (a reference to a scalar, else
    /// `Arg::wire`), so that it encodes as the owned struct does without a clone. Declared in
    /// the method, it names no type of the user's, which its name would hide there.
    fn lent_args(&self, method: &Method) -> TokenStream {
        let args_struct = &method.args_struct;
        let fields: Vec<&Ident> = method.args.iter().map(|arg| arg.ident).collect();
        let wires = method.args.iter().map(|arg| {
            let ident = arg.ident;
            if arg.by_value() {
                quote!(&#ident)
            } else {
                quote!(::fabric_core::Arg::wire(&#ident))
            }
        });
        let generics: Vec<Ident> = (0..method.args.len())
            .map(|index| format_ident!("W{}", index))
            .collect();
        quote! {
            #[derive(::fabric_core::__private::serde::Serialize)]
            #[serde(crate = "::fabric_core::__private::serde")]
            struct #args_struct<#(#generics),*> {
                #(#fields: #generics,)*
            }
            let args = #args_struct { #(#fields: #wires),* };
        }
    }

    /// `{Trait}Server<T>`: holds the implementation and becomes a `ServerBuilder`.
    fn server_struct(&self) -> TokenStream {
        let ServiceGenerator {
            vis,
            cfgs,
            server,
            client,
            trait_ident,
            ..
        } = self;
        let server_name = server.to_string();
        let doc = format!(
            " Serves the [`{}`] service with the implementation `T`: decodes each call, runs \
             the method on `T` and encodes the result.",
            self.trait_name
        );
        let doc2 = format!(
            " [`{server}::new`] gives the `ServerBuilder` that chooses the number of workers and \
             starts serving."
        );
        quote! {
            #cfgs
            #[doc = #doc]
            #[doc = ""]
            #[doc = #doc2]
            #vis struct #server<T> {
                imp: T,
            }

            #cfgs
            impl<T> #server<T>
            where
                T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                /// A server builder for the implementation `imp`.
                #vis fn new(imp: T) -> ::fabric_core::ServerBuilder<Self> {
                    ::fabric_core::ServerBuilder::new(#server { imp })
                }

                /// The implementation being served.
                #vis fn get_ref(&self) -> &T {
                    &self.imp
                }

                /// The service's contract, which the server announces in its keep-alives:
                /// the same as the client's.
                #vis fn contract() -> ::fabric_core::Contract {
                    #client::contract()
                }
            }

            // By hand, so that `T` need not be `Debug`.
            #cfgs
            impl<T> ::core::fmt::Debug for #server<T> {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#server_name).finish_non_exhaustive()
                }
            }
        }
    }

    /// `Dispatch` for the server: from a method name and a body to the encoded result.
    fn impl_dispatch(&self) -> TokenStream {
        let ServiceGenerator {
            cfgs,
            server,
            client,
            trait_ident,
            trait_name,
            ..
        } = self;
        let methods = &self.service.methods;
        let names = methods.iter().map(|method| &method.wire_name);
        let method_list = if methods.iter().all(|method| method.cfgs.is_empty()) {
            quote!(&[#(#names),*])
        } else {
            // Attributes are not allowed on array elements, so a list that leaves out
            // `#[cfg]`'d-out methods is built by `#[cfg]`'d statements.
            let method_cfgs: Vec<_> = methods.iter().map(|method| &method.cfgs).collect();
            quote! {{
                const LEN: ::core::primitive::usize = {
                    let mut len = 0;
                    #( #(#method_cfgs)* { len += 1; } )*
                    len
                };
                const NAMES: [&::core::primitive::str; LEN] = {
                    let mut names = [""; LEN];
                    let mut next = 0;
                    #( #(#method_cfgs)* { names[next] = #names; next += 1; } )*
                    let _ = next; // The last increment is never read.
                    names
                };
                &NAMES
            }}
        };
        let arms = methods.iter().map(|method| {
            let Method {
                ident,
                cfgs,
                args_struct,
                wire_name,
                ..
            } = method;
            let fields = method.args.iter().map(|arg| arg.ident);
            // Fresh names, so that an argument called `codec` cannot shadow ours.
            let values: Vec<Ident> = (0..method.args.len())
                .map(|index| format_ident!("arg{}", index))
                .collect();
            let params = method.args.iter().map(|arg| arg.ident.unraw().to_string());
            let run = quote!(<T as #trait_ident>::#ident(&self.imp, #(#values),*));
            // A result type that cannot be encoded is reported at the type.
            let reply = match method.fallible {
                None => {
                    let value = quote_spanned! {self.output_span(method)=>
                        ::fabric_core::Reply::value(codec, &result)
                    };
                    quote! {
                        let result = #run;
                        #value
                    }
                }
                Some(_) => {
                    let value = quote_spanned! {self.output_span(method)=>
                        ::fabric_core::Reply::value(codec, &value)
                    };
                    let error = quote_spanned! {self.output_span(method)=>
                        ::fabric_core::Reply::error(codec, &error, message)
                    };
                    quote! {
                        match #run {
                            ::core::result::Result::Ok(value) => #value,
                            ::core::result::Result::Err(error) => {
                                // Display, else Debug, else JSON: whichever the type has
                                // (autoref specialization; one of the three is used).
                                #[allow(unused_imports)]
                                use ::fabric_core::__private::{
                                    ViaDebug as _, ViaDisplay as _, ViaSerialize as _,
                                };
                                #[allow(clippy::needless_borrow)]
                                let message =
                                    (&&&::fabric_core::__private::Render(&error)).fabric_message();
                                #error
                            }
                        }
                    }
                }
            };
            quote! {
                #(#cfgs)*
                #wire_name => {
                    let #args_struct { #(#fields: #values),* } =
                        ::fabric_core::__private::decode_args(codec, body, #wire_name, &[#(#params),*])?;
                    #reply
                }
            }
        });
        quote! {
            #cfgs
            impl<T> ::fabric_core::Dispatch for #server<T>
            where
                T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
            {
                const SERVICE: &'static ::core::primitive::str = #trait_name;

                const METHODS: &'static [&'static ::core::primitive::str] = #method_list;

                fn contract() -> ::core::option::Option<::fabric_core::Contract> {
                    ::core::option::Option::Some(#client::contract())
                }

                fn dispatch(
                    &self,
                    method: &::core::primitive::str,
                    codec: ::fabric_core::Codec,
                    body: &[::core::primitive::u8],
                ) -> ::core::result::Result<::fabric_core::Reply, ::fabric_core::DispatchError> {
                    match method {
                        #(#arms)*
                        _ => {
                            // Used by no arm when the trait has no methods.
                            let _ = (codec, body);
                            ::core::result::Result::Err(::fabric_core::DispatchError::UnknownMethod)
                        }
                    }
                }
            }
        }
    }

    /// `contract()`, the client's associated function that describes the service: one
    /// `MethodContract` per method, each under the method's `#[cfg]`s.
    fn contract_fn(&self) -> TokenStream {
        let vis = self.vis;
        let trait_name = &self.trait_name;
        let methods = self.service.methods.iter().map(|method| {
            let name = &method.wire_name;
            let params = method.args.iter().map(|arg| {
                let name = arg.ident.unraw().to_string();
                let ty = contract::type_text(arg.ty);
                quote!(.param(#name, #ty))
            });
            let returns = method
                .output
                .map_or_else(|| "()".to_owned(), contract::type_text);
            let doc = contract::doc_text(&method.docs);
            let idempotent = method.idempotent;
            let fallible = method.fallible.is_some();
            let cfgs = &method.cfgs;
            quote! {
                #(#cfgs)*
                let contract = contract.method(
                    ::fabric_core::MethodContract::new(#name)
                        #(#params)*
                        .returns(#returns)
                        .doc(#doc)
                        .idempotent(#idempotent)
                        .fallible(#fallible),
                );
            }
        });
        let doc = format!(
            " The contract of the [`{trait_name}`] service: each method with its parameters, \
             return type and doc, as the trait writes them."
        );
        quote! {
            #[doc = #doc]
            #vis fn contract() -> ::fabric_core::Contract {
                let contract = ::fabric_core::Contract::new(#trait_name);
                #(#methods)*
                contract
            }
        }
    }

    /// One compile-time check per argument and result type that it can cross the wire, at
    /// the type's span: a type that cannot is reported there, in fabric's words (the
    /// `on_unimplemented` message of `fabric_core::Wire`).
    fn wire_assertions(&self) -> TokenStream {
        let cfgs = &self.cfgs;
        let assertions = self.service.methods.iter().flat_map(|method| {
            let method_cfgs = &method.cfgs;
            let args = method.args.iter().map(|arg| arg.ty);
            args.chain(method.output).map(move |ty| {
                quote_spanned! {ty.span()=>
                    #(#method_cfgs)*
                    ::fabric_core::__private::assert_wire::<#ty>();
                }
            })
        });
        quote! {
            #cfgs
            const _: () = {
                #(#assertions)*
            };
        }
    }

    /// `Trait::method`, for intra-doc links, which name a raw identifier without `r#`.
    fn method_path(&self, method: &Method) -> String {
        format!("{}::{}", self.trait_name, method.wire_name)
    }

    /// Where errors about the method's result type point: the type, or the attribute if the
    /// method returns `()` implicitly.
    fn output_span(&self, method: &Method) -> Span {
        method.output.map_or_else(Span::call_site, Spanned::span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_ok(item: Item) -> syn::File {
        let tokens = expand(TokenStream::new(), &item).unwrap();
        syn::parse2(tokens).unwrap()
    }

    /// The `impl` blocks of `file`, by the name of their self type.
    fn impl_of<'f>(file: &'f syn::File, self_ty: &str) -> Vec<&'f syn::ItemImpl> {
        file.items
            .iter()
            .filter_map(|item| match item {
                Item::Impl(block) => {
                    let ty = &block.self_ty;
                    (quote!(#ty).to_string().replace(' ', "") == self_ty).then_some(block)
                }
                _ => None,
            })
            .collect()
    }

    fn client_method<'f>(file: &'f syn::File, name: &str) -> &'f syn::ImplItemFn {
        impl_of(file, "MultiplierClient")
            .into_iter()
            .filter(|block| block.trait_.is_none())
            .flat_map(|block| &block.items)
            .find_map(|item| match item {
                syn::ImplItem::Fn(f) if f.sig.ident == name => Some(f),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no client method {name}"))
    }

    fn attrs(attrs: &[syn::Attribute]) -> Vec<String> {
        attrs.iter().map(|a| quote!(#a).to_string()).collect()
    }

    #[test]
    fn generates_every_named_item() {
        let file = expand_ok(syn::parse_quote! {
            pub trait Multiplier {
                fn multiply(&self, x: i64, y: i64) -> i64;
                fn r#type(&self);
            }
        });
        let names: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Trait(t) => Some(t.ident.to_string()),
                Item::Struct(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                "Multiplier",
                "MultiplierMultiplyArgs",
                "MultiplierTypeArgs",
                "MultiplierClient",
                "MultiplierServer"
            ]
        );
        let dispatch = impl_of(&file, "MultiplierServer<T>")
            .into_iter()
            .find(|block| {
                let path = block.trait_.as_ref().map(|(_, path, _)| path);
                path.is_some_and(|path| path.segments.last().unwrap().ident == "Dispatch")
            })
            .expect("impl Dispatch");
        let dispatch = quote!(#dispatch).to_string();
        assert!(
            dispatch.contains(r#"= & ["multiply" , "type"]"#),
            "{dispatch}"
        );
        assert!(dispatch.contains("DispatchError :: UnknownMethod"));
    }

    #[test]
    fn keeps_the_trait_as_written() {
        let item: syn::ItemTrait = syn::parse_quote! {
            /// Docs.
            pub trait Multiplier: Send {
                #[cfg(unix)]
                fn multiply(&self, mut x: i64, y: i64) -> i64 { x += 1; x * y }
            }
        };
        let file = expand_ok(Item::Trait(item.clone()));
        assert_eq!(file.items[0], Item::Trait(item));
    }

    #[test]
    fn carries_docs_and_cfgs_to_the_client_method() {
        let file = expand_ok(syn::parse_quote! {
            pub trait Multiplier {
                /// Multiplies two numbers.
                #[cfg(feature = "math")]
                #[allow(unused)]
                fn multiply(&self, x: i64, y: i64) -> i64;
                fn plain(&self);
            }
        });
        let multiply = attrs(&client_method(&file, "multiply").attrs);
        assert_eq!(
            multiply,
            [
                r#"# [cfg (feature = "math")]"#,
                r#"# [doc = r" Multiplies two numbers."]"#,
                r#"# [doc = ""]"#,
                r#"# [doc = " Calls [`Multiplier::multiply`] on the remote instance."]"#,
                "# [allow (clippy :: too_many_arguments)]",
            ]
        );
        let plain = attrs(&client_method(&file, "plain").attrs);
        assert_eq!(
            plain[0],
            r#"# [doc = " Calls [`Multiplier::plain`] on the remote instance."]"#
        );

        // The method's `#[cfg]` also guards its arguments struct, dispatch arm and entry in
        // `METHODS`.
        let expanded = quote!(#file).to_string();
        assert!(expanded.contains(
            r#"# [cfg (feature = "math")] # [doc = " Arguments of [`Multiplier::multiply`]"#
        ));
        assert!(expanded.contains(r#"# [cfg (feature = "math")] "multiply" =>"#));
        assert!(expanded.contains(r#"# [cfg (feature = "math")] { names [next] = "multiply""#));
    }

    #[test]
    fn a_unit_method_returns_unit() {
        let file = expand_ok(syn::parse_quote! {
            pub trait Multiplier {
                fn reset(&self);
            }
        });
        let reset = &client_method(&file, "reset").sig.output;
        assert_eq!(
            quote!(#reset).to_string(),
            "-> :: fabric_core :: Result < () >"
        );
    }

    #[test]
    fn lends_every_argument_but_a_scalar() {
        let file = expand_ok(syn::parse_quote! {
            pub trait Multiplier {
                fn put(&self, key: String, blob: Bytes, n: i64, ok: bool, id: Id);
            }
        });
        let put = client_method(&file, "put");
        let inputs = &put.sig.inputs;
        assert_eq!(
            quote!(#inputs).to_string(),
            "& self , key : impl :: fabric_core :: Arg < String > , \
             blob : impl :: fabric_core :: Arg < Bytes > , n : i64 , ok : bool , \
             id : impl :: fabric_core :: Arg < Id >"
        );
        // The body is a struct of the owned one's name and fields, of what each encodes.
        let body = &put.block;
        let body = quote!(#body).to_string();
        assert!(
            body.contains(
                "struct MultiplierPutArgs < W0 , W1 , W2 , W3 , W4 > \
                 { key : W0 , blob : W1 , n : W2 , ok : W3 , id : W4 , }"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "MultiplierPutArgs { key : :: fabric_core :: Arg :: wire (& key) , \
                 blob : :: fabric_core :: Arg :: wire (& blob) , n : & n , ok : & ok , \
                 id : :: fabric_core :: Arg :: wire (& id) }"
            ),
            "{body}"
        );
    }

    #[test]
    fn the_trait_cfg_guards_everything() {
        let file = expand_ok(syn::parse_quote! {
            #[cfg(unix)]
            pub trait Multiplier {
                fn reset(&self);
            }
        });
        for item in &file.items {
            let text = quote!(#item).to_string();
            assert!(text.starts_with("# [cfg (unix)]"), "unguarded: {text}");
        }
    }

    #[test]
    fn reports_instead_of_expanding() {
        let item: Item = syn::parse_quote!(
            trait Counter {
                fn increment(&mut self);
            }
        );
        let error = expand(TokenStream::new(), &item).unwrap_err();
        assert!(error.to_string().contains("found `&mut self`"));
    }
}
