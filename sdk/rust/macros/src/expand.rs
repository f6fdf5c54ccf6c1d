//! The token streams the export macros produce.
//!
//! Items declared by an expansion are not hygienic (a proc-macro cannot hide
//! items from the tokens it was given), so each carries a `__netra` prefix: a
//! user's tool named `Plugin` must not be shadowed inside the expansion.

use std::path::PathBuf;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::Type;

/// The repository's `wit/` directory, as an absolute path.
///
/// It is found from this crate's own manifest directory (`sdk/rust/macros`), so
/// `wit/` stays the only place the contract is written.
fn wit_dir() -> String {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../wit"));
    // Canonicalising only tidies the `..`s for error messages; if it fails,
    // wit-bindgen reports the missing directory itself.
    dir.canonicalize().unwrap_or(dir).display().to_string()
}

/// The version of the `netra:plugin` package the SDK targets; it must match
/// `wit/plugin.wit` and the inline world in netra-sdk's bindings.
const VERSION: &str = "0.1.0";

/// The interfaces of `netra:plugin` a tool plugin's world uses.
const TOOL_INTERFACES: &[&str] = &["types", "log", "config", "kv", "progress", "interaction"];

/// The interfaces of `netra:plugin` an agent plugin's world uses.
const AGENT_INTERFACES: &[&str] = &[
    "types",
    "log",
    "config",
    "kv",
    "progress",
    "interaction",
    "events",
    "tools",
    "llm",
];

/// A `generate!` of `world`, in a module named `__netra_bindings`, that takes
/// each of `interfaces` from netra-sdk's bindings instead of generating it.
///
/// wit-bindgen rejects a `with` entry its world does not use, hence one list
/// per world.
fn bindings(world: &str, interfaces: &[&str]) -> TokenStream {
    let wit = wit_dir();
    let keys = interfaces
        .iter()
        .map(|name| format!("netra:plugin/{name}@{VERSION}"));
    let modules = interfaces
        .iter()
        .map(|name| Ident::new(name, Span::call_site()));
    quote! {
        mod __netra_bindings {
            ::netra_sdk::__private::wit_bindgen::generate!({
                world: #world,
                path: #wit,
                runtime_path: "::netra_sdk::__private::wit_bindgen::rt",
                with: {
                    #(#keys: ::netra_sdk::__private::bindings::netra::plugin::#modules,)*
                },
            });
        }
    }
}

/// The expansion of `export_tools!(A, B, ...)`.
pub(crate) fn tools(tools: Vec<Type>) -> TokenStream {
    if tools.is_empty() {
        return quote! {
            ::core::compile_error!("export_tools! needs at least one tool, e.g. `export_tools!(MyTool);`");
        };
    }
    let world = format!("netra:plugin/tool-plugin@{VERSION}");
    let bindings = bindings(&world, TOOL_INTERFACES);
    quote! {
        const _: () = {
            #bindings

            use ::netra_sdk::__private::bindings::netra::plugin::types as __netra_wit;

            const __NETRA_TOOLS: &[::netra_sdk::__private::ToolEntry] = &[
                #(::netra_sdk::__private::ToolEntry::of::<#tools>(),)*
            ];
            const _: () = ::netra_sdk::__private::check_tool_names(&[
                #(<#tools as ::netra_sdk::Tool>::NAME,)*
            ]);

            struct __NetraPlugin;

            impl __netra_bindings::exports::netra::plugin::tool::Guest for __NetraPlugin {
                fn describe() -> ::std::vec::Vec<__netra_wit::ToolDescriptor> {
                    ::netra_sdk::__private::describe_tools(__NETRA_TOOLS)
                }

                fn invoke(
                    ctx: __netra_wit::RunContext,
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, __netra_wit::ToolError> {
                    ::netra_sdk::__private::invoke_tool(__NETRA_TOOLS, ctx, name, arguments)
                }
            }

            __netra_bindings::export!(__NetraPlugin with_types_in __netra_bindings);
        };
    }
}

/// The expansion of `export_agent!(A)`.
pub(crate) fn agent(agent: Type) -> TokenStream {
    let world = format!("netra:plugin/agent-plugin@{VERSION}");
    let bindings = bindings(&world, AGENT_INTERFACES);
    quote! {
        const _: () = {
            #bindings

            use ::netra_sdk::__private::bindings::netra::plugin::types as __netra_wit;

            const _: () = ::netra_sdk::__private::check_name(<#agent as ::netra_sdk::Agent>::NAME);

            struct __NetraPlugin;

            impl __netra_bindings::exports::netra::plugin::agent::Guest for __NetraPlugin {
                fn describe() -> __netra_wit::AgentDescriptor {
                    ::netra_sdk::__private::describe_agent::<#agent>()
                }

                fn run(
                    ctx: __netra_wit::RunContext,
                    input: ::std::string::String,
                    history: ::std::vec::Vec<__netra_wit::Message>,
                ) -> ::core::result::Result<::std::string::String, __netra_wit::AgentError> {
                    ::netra_sdk::__private::run_agent::<#agent>(ctx, input, history)
                }
            }

            __netra_bindings::export!(__NetraPlugin with_types_in __netra_bindings);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_dir_is_the_repository_contract() {
        let dir = PathBuf::from(wit_dir());
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.join("plugin.wit").is_file(), "{}", dir.display());
    }

    #[test]
    fn version_matches_the_wit_package() {
        let wit = std::fs::read_to_string(PathBuf::from(wit_dir()).join("plugin.wit"))
            .expect("wit/plugin.wit is readable");
        let package = format!("package netra:plugin@{VERSION};");
        assert!(wit.lines().any(|line| line.trim() == package), "{package}");
    }

    #[test]
    fn each_world_maps_only_the_interfaces_it_uses() {
        let tool = tools(vec![syn::parse_quote!(Calculate)]).to_string();
        assert!(tool.contains("\"netra:plugin/tool-plugin@0.1.0\""));
        assert!(tool.contains("\"netra:plugin/kv@0.1.0\""));
        assert!(!tool.contains("\"netra:plugin/llm@0.1.0\""));

        let agent = agent(syn::parse_quote!(Helper)).to_string();
        assert!(agent.contains("\"netra:plugin/agent-plugin@0.1.0\""));
        assert!(agent.contains("\"netra:plugin/llm@0.1.0\""));
    }

    #[test]
    fn no_tools_is_a_compile_error() {
        assert!(tools(Vec::new()).to_string().contains("compile_error"));
    }
}
