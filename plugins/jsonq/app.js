// The jsonq plugin: `json_query` reads values out of a JSON document with a
// small path language (see path.js).
import { defineTool, exportTools, ToolError } from 'netra';
import { PathError, query } from './path.js';

const jsonQuery = defineTool(
  {
    name: 'json_query',
    description:
      'Reads a value out of a JSON document by path, e.g. `a.b[0].c`, `items[*].name` or `["key with dots"]`. ' +
      'Missing keys and indexes out of range give null; `[*]` gives an array with one entry per element.',
    schema: {
      type: 'object',
      properties: {
        json: { description: 'The document: any JSON value, or JSON text in a string.' },
        path: {
          type: 'string',
          description: 'Dotted and bracketed path: `a.b`, `[0]`, `[-1]`, `[*]`, `["quoted key"]`; empty or `$` for the whole document.',
        },
      },
      required: ['json', 'path'],
      additionalProperties: false,
    },
    examples: [{ json: { a: { b: [{ c: 7 }, { c: 9 }] } }, path: 'a.b[1].c' }],
    outputSchema: {
      type: 'object',
      properties: { result: { description: 'The value at the path (null when missing).' } },
      required: ['result'],
    },
  },
  (args) => {
    let document = args.json;
    if (typeof document === 'string') {
      try {
        document = JSON.parse(document);
      } catch (error) {
        throw ToolError.invalid(
          `\`json\` is a string but not JSON text (${error.message}); to query a string value, pass it JSON-encoded`,
        );
      }
    }
    try {
      return { result: query(document, args.path) };
    } catch (error) {
      if (error instanceof PathError) throw ToolError.invalid(`path ${JSON.stringify(args.path)}: ${error.message}`);
      throw error;
    }
  },
);

export const tool = exportTools(jsonQuery);
