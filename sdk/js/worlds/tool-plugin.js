// The host interfaces of the `tool-plugin` world. build.mjs copies this file
// beside netra.js as `world.js` when it builds a tool plugin. componentize-js
// defines a module only for the interfaces the world imports, so the agent-only
// ones are absent here and netra.js reports a clear error if a tool uses them.
export * as log from 'netra:plugin/log@0.1.0';
export * as config from 'netra:plugin/config@0.1.0';
export * as kv from 'netra:plugin/kv@0.1.0';
export * as progress from 'netra:plugin/progress@0.1.0';
export * as interaction from 'netra:plugin/interaction@0.1.0';

export const events = null;
export const tools = null;
export const llm = null;

export const world = 'tool-plugin';
