//! The export macros of netra-sdk: `export_tools!` and `export_agent!`.
//!
//! Use them through `netra_sdk`, which re-exports and documents them. They are a
//! proc-macro rather than `macro_rules!` for one reason: wit-bindgen's
//! `generate!` takes its WIT directory as a string literal, and a plugin crate
//! lives outside this repository's tree, so the absolute path of `wit/` has to be
//! computed here and pasted in as a literal.
//!
//! Each macro expands, inside an anonymous `const _: () = { ... };`, to a
//! `generate!` of the plugin's world that maps every imported interface and the
//! `types` interface to the modules netra-sdk already generated (so no type
//! exists twice), an implementation of the generated `Guest` trait that forwards
//! to `netra_sdk::__private`, and the generated `export!`.

mod expand;

use proc_macro::TokenStream;
use syn::punctuated::Punctuated;
use syn::{Token, Type, parse_macro_input};

/// Exports tools as `netra:plugin/tool`; see `netra_sdk::export_tools`.
#[proc_macro]
pub fn export_tools(input: TokenStream) -> TokenStream {
    let tools = parse_macro_input!(input with Punctuated::<Type, Token![,]>::parse_terminated);
    expand::tools(tools.into_iter().collect()).into()
}

/// Exports an agent as `netra:plugin/agent`; see `netra_sdk::export_agent`.
#[proc_macro]
pub fn export_agent(input: TokenStream) -> TokenStream {
    let agent = parse_macro_input!(input as Type);
    expand::agent(agent).into()
}
