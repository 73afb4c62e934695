//! The contract of a service as text: each type as written, with canonical spacing, and each
//! doc comment as its lines. What `expand` puts into the generated `contract()`.

use quote::ToTokens;
use syn::{Attribute, Expr, ExprLit, Lit, Meta, Type};

/// `ty` as written, spaced canonically: `Vec<i64>`, `&'static str`, `(u8, String)`,
/// `::std::string::String`. The same tokens give the same text on every build, so the
/// contract's hash is stable.
pub(crate) fn type_text(ty: &Type) -> String {
    spaced(&ty.to_token_stream().to_string())
}

/// Removes the spaces `TokenStream::to_string` puts between tokens, except between two words
/// (`dyn Trait`, `'a str`), and puts one after each comma and semicolon and around `->`.
fn spaced(tokens: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = tokens.chars().collect();
    let mut text = String::with_capacity(chars.len());
    for (index, &c) in chars.iter().enumerate() {
        if c != ' ' {
            text.push(c);
            continue;
        }
        let before = text.chars().last();
        let after = chars.get(index + 1).copied();
        let keep = match (before, after) {
            (Some(before), Some(after)) => {
                (word(before) && (word(after) || after == '\'')) || before == ',' || before == ';'
            }
            _ => false,
        };
        if keep {
            text.push(' ');
        }
    }
    text.replace("->", " -> ")
}

/// The text of `#[doc = "..."]` attributes: each line trimmed, joined with `\n`, without
/// leading and trailing blank lines.
pub(crate) fn doc_text(docs: &[&Attribute]) -> String {
    let lines: Vec<String> = docs
        .iter()
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| {
            // `split`, not `lines`: an empty `///` line is a paragraph break to keep.
            text.split('\n')
                .map(|line| line.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    lines.join("\n").trim_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ty: Type) -> String {
        type_text(&ty)
    }

    #[test]
    fn types_are_spaced_canonically() {
        assert_eq!(text(syn::parse_quote!(i64)), "i64");
        assert_eq!(text(syn::parse_quote!(Vec<i64>)), "Vec<i64>");
        assert_eq!(
            text(syn::parse_quote!(Result<Vec<u8>, DivError>)),
            "Result<Vec<u8>, DivError>"
        );
        assert_eq!(text(syn::parse_quote!((u8, String))), "(u8, String)");
        assert_eq!(text(syn::parse_quote!([u8; 4])), "[u8; 4]");
        assert_eq!(text(syn::parse_quote!(&'static str)), "&'static str");
        assert_eq!(text(syn::parse_quote!(fn(u8) -> u8)), "fn(u8) -> u8");
        assert_eq!(
            text(syn::parse_quote!(::std::string::String)),
            "::std::string::String"
        );
        assert_eq!(
            text(syn::parse_quote!(HashMap<String, Option<f64>>)),
            "HashMap<String, Option<f64>>"
        );
    }

    #[test]
    fn docs_are_their_lines() {
        let attrs: Vec<Attribute> = vec![
            syn::parse_quote!(#[doc = " Multiplies two numbers."]),
            syn::parse_quote!(#[doc = " Wraps on overflow."]),
            syn::parse_quote!(#[doc = ""]),
            syn::parse_quote!(#[doc = " More."]),
            syn::parse_quote!(#[doc = ""]),
        ];
        let refs: Vec<&Attribute> = attrs.iter().collect();
        assert_eq!(
            doc_text(&refs),
            "Multiplies two numbers.\nWraps on overflow.\n\nMore."
        );
        assert_eq!(doc_text(&[]), "");
    }
}
