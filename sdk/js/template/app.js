// {{name}}: a netra tool plugin written in JavaScript, with the `greet` tool.
// Build: netra plugin build .      ({{name}}.wasm, its manifest beside it)
// Call:  netra tool call {{name}}.wasm greet '{"name": "Ada"}'
import { defineTool, exportTools, ToolError } from 'netra';

const greet = defineTool(
  {
    name: 'greet',
    description: 'Greets someone by name.',
    schema: {
      type: 'object',
      properties: { name: { type: 'string', description: 'Who to greet.' } },
      required: ['name'],
      additionalProperties: false,
    },
  },
  (args) => {
    const name = args.name.trim();
    if (name === '') throw ToolError.invalid('`name` is empty');
    return { greeting: `Hello, ${name}!` };
  },
);

// componentize-js binds the world's `tool` interface to this export.
export const tool = exportTools(greet);
