//! Procedural macros of `processing` (layer: beside the facade; depends on nothing).
//!
//! `#[processing::main]` turns `fn main` into one that runs the child bootstrap first, so a
//! re-executed child runs its target instead of the program's `main`.

#![doc(html_root_url = "https://docs.rs/processing-macros/0.1.0")]
#![cfg_attr(docsrs, feature(doc_cfg))]

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

/// Runs `processing::init()` before the body of `main`.
///
/// ```
/// #[processing::main]
/// fn main() {
///     let mut child = processing::spawn(|x: u32| x + 1, 41).unwrap();
///     assert_eq!(child.join().unwrap(), 42);
/// }
/// ```
#[proc_macro_attribute]
pub fn main(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    // The body is the last brace-delimited group of the function item.
    let Some(pos) = tokens
        .iter()
        .rposition(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace))
    else {
        return "compile_error!(\"#[processing::main] expects a function\");"
            .parse()
            .unwrap_or_default();
    };
    let TokenTree::Group(body) = &tokens[pos] else {
        unreachable!()
    };
    let prelude: TokenStream = "::processing::init();".parse().unwrap_or_default();
    let mut new_body = prelude;
    new_body.extend(body.stream());
    let mut group = Group::new(Delimiter::Brace, new_body);
    group.set_span(body.span());
    tokens[pos] = TokenTree::Group(group);
    tokens.into_iter().collect()
}
