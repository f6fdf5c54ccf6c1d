//! The only `generate!` over `wit/` in this crate.
//!
//! The world generated here only imports: a component's world is the union of
//! every `component-type` section linked into it, so a world with exports in this
//! library would force every plugin to export both `tool` and `agent`. The export
//! side is generated in the plugin's own crate by `export_tools!`/`export_agent!`,
//! which map all of these modules in with `with` so no type is generated twice.
//! Imports a plugin never calls are dropped when the component is made.

wit_bindgen::generate!({
    path: "../../wit",
    // The `netra:plugin` interfaces come from another package than the inline
    // world, so wit-bindgen generates them only when asked to.
    generate_all,
    inline: "
        package netra:sdk;

        world guest-imports {
            import netra:plugin/log@0.1.0;
            import netra:plugin/config@0.1.0;
            import netra:plugin/kv@0.1.0;
            import netra:plugin/progress@0.1.0;
            import netra:plugin/interaction@0.1.0;
            import netra:plugin/events@0.1.0;
            import netra:plugin/tools@0.1.0;
            import netra:plugin/llm@0.1.0;
        }
    ",
    world: "netra:sdk/guest-imports",
    // `run-context`, `message` and the agent types are used only by the export
    // interfaces, which the plugin's crate generates against these definitions.
    generate_unused_types: true,
});
