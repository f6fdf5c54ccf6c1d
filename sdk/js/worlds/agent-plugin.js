// The host interfaces of the `agent-plugin` world. build.mjs copies this file
// beside netra.js as `world.js` when it builds an agent plugin.
export * as log from 'netra:plugin/log@0.1.0';
export * as config from 'netra:plugin/config@0.1.0';
export * as kv from 'netra:plugin/kv@0.1.0';
export * as progress from 'netra:plugin/progress@0.1.0';
export * as interaction from 'netra:plugin/interaction@0.1.0';
export * as events from 'netra:plugin/events@0.1.0';
export * as tools from 'netra:plugin/tools@0.1.0';
export * as llm from 'netra:plugin/llm@0.1.0';

export const world = 'agent-plugin';
