#!/usr/bin/env node
// Builds a JavaScript netra plugin into a WebAssembly component.
//
//   node sdk/js/build.mjs PLUGIN_DIR -o OUT.wasm [--world tool-plugin|agent-plugin]
//                         [--wit PATH] [--sdk DIR]
//
// PLUGIN_DIR holds app.js (the entry module) and plugin.toml (its `kind`
// picks the world unless --world is given). The app imports the SDK as
// 'netra'; componentize-js resolves every specifier as a path and knows no
// packages, so the plugin is copied into a staging directory beside the SDK
// and its 'netra' imports are rewritten to relative paths there.
//
// componentize-js comes from DIR/node_modules (DIR defaults to this script's
// directory); `cargo xtask plugins` installs it with
// `npm ci --prefix sdk/js --ignore-scripts --no-audit --no-fund --cache target/tools/npm-cache`.

import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const WORLDS = { tool: 'tool-plugin', agent: 'agent-plugin' };
const EXPORTS = { 'tool-plugin': 'tool', 'agent-plugin': 'agent' };
const USAGE = 'usage: node sdk/js/build.mjs PLUGIN_DIR -o OUT.wasm [--world tool-plugin|agent-plugin] [--wit PATH] [--sdk DIR]';
const INSTALL_HINT = 'run `cargo xtask plugins`, or install it alone with `npm ci --prefix sdk/js`';

/** An error the user can fix; printed without a stack. */
class BuildError extends Error {}

async function main() {
  const started = performance.now();
  const options = parseCommandLine();
  const sdk = resolve(options.sdk ?? dirname(fileURLToPath(import.meta.url)));
  const pluginDir = resolve(options.pluginDir);
  const out = resolve(options.out);
  const wit = resolve(options.wit ?? join(sdk, '..', '..', 'wit'));

  const manifest = await readManifest(pluginDir);
  const world = options.world ?? worldOf(manifest, pluginDir);
  if (!Object.hasOwn(EXPORTS, world)) {
    throw new BuildError(`unknown world \`${world}\`: expected ${Object.keys(EXPORTS).join(' or ')}`);
  }
  await mustExist(join(pluginDir, 'app.js'), 'the plugin\'s entry module');
  await mustExist(join(sdk, 'netra.js'), 'the SDK module', 'pass --sdk with the path of sdk/js');
  await mustExist(wit, 'the WIT package', 'pass --wit with the path of the repository\'s wit/');
  const { componentize, version } = await loadComponentize(sdk);

  const stage = await mkdtemp(join(tmpdir(), 'netra-js-'));
  const cwd = process.cwd();
  try {
    await cp(join(sdk, 'netra.js'), join(stage, 'netra', 'netra.js'));
    await cp(join(sdk, 'worlds', `${world}.js`), join(stage, 'netra', 'world.js'));
    await copyPlugin(pluginDir, join(stage, 'app'));
    await rewriteSdkImports(sdk, join(stage, 'app'), join(stage, 'netra', 'netra.js'));

    // componentize-js maps the current directory (when it holds the source)
    // as the guest's root, so build from the staging directory: the snapshot
    // sees nothing else of the machine and stack traces read `app/app.js`.
    process.chdir(stage);
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: join(stage, 'app', 'app.js'),
        witPath: wit,
        worldName: world,
        // No fetch(): netra grants outgoing HTTP per plugin and the SDK does
        // not wrap it yet. stdio, clocks and random stay (the host provides them).
        disableFeatures: ['http', 'fetch-event'],
      }));
    } catch (error) {
      throw new BuildError(explainComponentizeError(error, world));
    }
    process.chdir(cwd);

    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, component);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const mib = (component.length / (1024 * 1024)).toFixed(1);
    const name = manifest?.name ?? pluginDir.split(sep).pop();
    console.error(`built ${name} (${world}) -> ${relative(cwd, out) || out}: ${mib} MiB in ${seconds}s (componentize-js ${version})`);
  } finally {
    process.chdir(cwd);
    await rm(stage, { recursive: true, force: true });
  }
}

function parseCommandLine() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        world: { type: 'string' },
        wit: { type: 'string' },
        sdk: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new BuildError(`${error.message}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length !== 1 || values.out === undefined) throw new BuildError(USAGE);
  return { pluginDir: positionals[0], ...values };
}

/**
 * The top-level `key = "string"` pairs of plugin.toml: all the build needs
 * (`name`, `kind`). The host validates the whole manifest when it loads it.
 */
async function readManifest(pluginDir) {
  const path = join(pluginDir, 'plugin.toml');
  if (!existsSync(path)) return undefined;
  const manifest = {};
  for (const line of (await readFile(path, 'utf8')).split(/\r?\n/)) {
    if (/^\s*\[/.test(line)) break;
    const pair = /^\s*([A-Za-z0-9_-]+)\s*=\s*(["'])([^"'\\]*)\2\s*(#.*)?$/.exec(line);
    if (pair) manifest[pair[1]] = pair[3];
  }
  return manifest;
}

function worldOf(manifest, pluginDir) {
  if (manifest === undefined) {
    throw new BuildError(`${pluginDir} has no plugin.toml: add one (see sdk/js/template/plugin.toml) or pass --world`);
  }
  if (manifest.kind === undefined) {
    throw new BuildError(`${join(pluginDir, 'plugin.toml')} has no \`kind = "tool"\` or \`kind = "agent"\`; add it or pass --world`);
  }
  const world = Object.hasOwn(WORLDS, manifest.kind) ? WORLDS[manifest.kind] : undefined;
  if (world === undefined) {
    throw new BuildError(`plugin.toml: unknown kind \`${manifest.kind}\`: expected "tool" or "agent"`);
  }
  return world;
}

async function mustExist(path, what, hint) {
  try {
    await stat(path);
  } catch {
    throw new BuildError(`${what} not found: ${path}${hint ? ` (${hint})` : ''}`);
  }
}

/** Imports componentize-js from `sdk`/node_modules, checking it is the pinned version. */
async function loadComponentize(sdk) {
  const packageDir = join(sdk, 'node_modules', '@bytecodealliance', 'componentize-js');
  let installed;
  try {
    installed = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8'));
  } catch {
    throw new BuildError(`componentize-js is not installed in ${join(sdk, 'node_modules')}: ${INSTALL_HINT}`);
  }
  const pinned = JSON.parse(await readFile(join(sdk, 'package.json'), 'utf8'))
    .dependencies?.['@bytecodealliance/componentize-js'];
  if (pinned !== undefined && installed.version !== pinned) {
    throw new BuildError(`componentize-js ${installed.version} is installed but sdk/js/package.json pins ${pinned}: ${INSTALL_HINT}`);
  }
  const entry = installed.exports?.import ?? installed.main ?? 'src/componentize.js';
  const module = await import(pathToFileURL(join(packageDir, entry)).href);
  return { componentize: module.componentize, version: installed.version };
}

/** Copies the plugin's sources; skips dependencies, hidden files and build outputs. */
async function copyPlugin(from, to) {
  await cp(from, to, {
    recursive: true,
    filter: (path) => {
      const name = path.split(sep).pop();
      return path === from || !(name.startsWith('.') || name === 'node_modules' || name === 'target' || extname(name) === '.wasm');
    },
  });
}

/** Rewrites `'netra'` imports in every JS module under `dir` to the staged SDK. */
async function rewriteSdkImports(sdk, dir, sdkModule) {
  const lexerEntry = join(sdk, 'node_modules', 'es-module-lexer', 'dist', 'lexer.js');
  if (!existsSync(lexerEntry)) throw new BuildError(`es-module-lexer is not installed in ${join(sdk, 'node_modules')}: ${INSTALL_HINT}`);
  const { init, parse } = await import(pathToFileURL(lexerEntry).href);
  await init;
  for (const path of await listModules(dir)) {
    const source = await readFile(path, 'utf8');
    let imports;
    try {
      [imports] = parse(source, path);
    } catch (error) {
      throw new BuildError(`cannot parse ${relative(dir, path)}: ${error.message}`);
    }
    const target = `./${relative(dirname(path), sdkModule).split(sep).join('/')}`.replace(/^\.\/\.\.\//, '../');
    let rewritten = '';
    let last = 0;
    // Static imports and re-exports have a specifier `n`; dynamic `import('netra')` too.
    for (const spec of imports) {
      if (spec.d > -1) warnDynamicImport(dir, path, source, spec.s);
      if (spec.n !== 'netra') continue;
      const quoted = spec.d === -1 ? [spec.s, spec.e] : [spec.s + 1, spec.e - 1];
      rewritten += source.slice(last, quoted[0]) + target;
      last = quoted[1];
    }
    if (last > 0) await writeFile(path, rewritten + source.slice(last));
  }
}

/** StarlingMonkey loads modules only while the build snapshots the app: an `import()` reached by a call traps. */
function warnDynamicImport(dir, path, source, offset) {
  const line = source.slice(0, offset).split('\n').length;
  console.error(`warning: ${relative(dir, path)}:${line}: import() cannot load modules once the component is built: a call that reaches it traps the component (use a static import)`);
}

async function listModules(dir) {
  const modules = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) modules.push(...(await listModules(path)));
    else if (['.js', '.mjs'].includes(extname(entry.name))) modules.push(path);
  }
  return modules;
}

/** componentize-js errors are long; lead with what to do about the common ones. */
function explainComponentizeError(error, world) {
  const message = String(error?.message ?? error);
  const name = EXPORTS[world];
  if (message.includes('does not export')) {
    return `app.js must export the \`${name}\` interface, e.g. \`export const ${name} = ${name === 'tool' ? 'exportTools(...)' : 'exportAgent(...)'};\`\n\n${message}`;
  }
  if (message.includes('Error loading module')) {
    return `an import could not be resolved (componentize-js resolves specifiers as paths: use './file.js' for the plugin's own modules, 'netra' for the SDK; npm packages are not bundled)\n\n${message}`;
  }
  if (message.includes('Exception while evaluating top-level script')) {
    return `the plugin's module-level code threw (componentize-js runs it once, at build time, and snapshots the result)\n\n${message}`;
  }
  return `componentize-js failed:\n${message}`;
}

main().catch((error) => {
  console.error(`error: ${error instanceof BuildError ? error.message : (error?.stack ?? error)}`);
  process.exit(1);
});
