#!/usr/bin/env python3
"""Builds a Python netra plugin into a WebAssembly component with componentize-py.

    python3 sdk/python/build.py PLUGIN_DIR -o OUT.wasm [--world tool-plugin|agent-plugin]
                                [--wit PATH] [--sdk PATH]

PLUGIN_DIR holds `app.py` (the plugin's module) and `plugin.toml` (its
manifest, whose `kind` picks the world unless --world is given). The SDK
(`netra`) and the plugin directory are put on the Python path; the WIT defaults
to this repository's `wit/`.

componentize-py is taken from the repository's tool venv
(target/tools/python, which `cargo xtask plugins` installs from
sdk/python/requirements.txt), else from PATH.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SDK = Path(__file__).resolve().parent
ROOT = SDK.parent.parent
VENV = ROOT / "target" / "tools" / "python"
WORLDS = {"tool": "tool-plugin", "agent": "agent-plugin"}
INSTALL_HINT = (
    "run `cargo xtask plugins` (it installs it), or by hand:\n"
    "  python3 -m venv target/tools/python && "
    "target/tools/python/bin/pip install -r sdk/python/requirements.txt"
)


class BuildError(Exception):
    """A problem reported to the user as `error: ...`, without a traceback."""


def read_manifest(path):
    """The top-level keys of plugin.toml (tomllib where Python has it)."""
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the few top-level strings we need
        manifest = {}
        for line in text.splitlines():
            if line.lstrip().startswith("["):
                break
            match = re.match(r'\s*([A-Za-z_][\w-]*)\s*=\s*"([^"]*)"', line)
            if match:
                manifest[match.group(1)] = match.group(2)
        return manifest
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BuildError(f"{path} is not valid TOML: {error}") from None


def find_componentize_py():
    """The componentize-py to run, and the virtual environment it comes from
    (None when it was found on PATH)."""
    for name in ("componentize-py", "componentize-py.exe"):
        for bin_dir in ("bin", "Scripts"):
            candidate = VENV / bin_dir / name
            if candidate.is_file():
                return candidate, VENV
    found = shutil.which("componentize-py")
    if found:
        return Path(found), None
    raise BuildError(f"componentize-py is not installed: {INSTALL_HINT}")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Build a Python netra plugin (PLUGIN_DIR/app.py) into a component."
    )
    parser.add_argument("plugin_dir", type=Path, help="the directory with app.py and plugin.toml")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .wasm to write")
    parser.add_argument(
        "--world",
        choices=sorted(WORLDS.values()),
        help="the world to target (default: from plugin.toml's kind)",
    )
    parser.add_argument(
        "--wit", type=Path, default=ROOT / "wit", help="the WIT directory (default: %(default)s)"
    )
    parser.add_argument(
        "--sdk",
        type=Path,
        default=SDK,
        help="the directory that holds the `netra` package (default: %(default)s)",
    )
    return parser.parse_args(argv)


def build(args):
    plugin_dir = args.plugin_dir.resolve()
    app = plugin_dir / "app.py"
    if not app.is_file():
        raise BuildError(f"{app} does not exist: a Python plugin's module is app.py")
    manifest_path = plugin_dir / "plugin.toml"
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
    world = args.world
    if world is None:
        kind = manifest.get("kind")
        if kind not in WORLDS:
            where = f"{manifest_path}" if manifest else f"{manifest_path} (missing)"
            raise BuildError(
                f"cannot tell the world: {where} has no kind = \"tool\" or \"agent\"; "
                "pass --world tool-plugin or --world agent-plugin"
            )
        world = WORLDS[kind]
    wit = args.wit.resolve()
    if not wit.exists():
        raise BuildError(f"the WIT path {wit} does not exist (pass --wit)")
    sdk = args.sdk.resolve()
    if not (sdk / "netra" / "__init__.py").is_file():
        raise BuildError(f"{sdk} has no netra package (pass --sdk, the directory holding netra/)")
    output = args.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)

    componentize_py, venv = find_componentize_py()
    env = dict(os.environ)
    # componentize-py adds the site-packages of $VIRTUAL_ENV (else of whatever
    # Python `site` reports) to the path. Unless the user chose a venv for the
    # plugin's own dependencies, point it at the tool venv, which holds nothing
    # a plugin imports, so that a build does not depend on the machine.
    if venv is not None and "VIRTUAL_ENV" not in env:
        env["VIRTUAL_ENV"] = str(venv)
    # A failing build is a Python traceback; componentize-py's own Rust
    # backtrace (printed when RUST_BACKTRACE is set) only buries it.
    env.setdefault("RUST_LIB_BACKTRACE", "0")
    started = time.monotonic()
    # componentize-py runs the module while it builds and writes __pycache__
    # into every directory on the Python path, so it is given copies: the
    # source tree stays clean. Inside the component they are /0 and /1
    # whatever their names here.
    with tempfile.TemporaryDirectory(prefix="netra-py-build-") as staging:
        app_copy = Path(staging) / "app"
        sdk_copy = Path(staging) / "sdk"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.wasm", ".*")
        shutil.copytree(plugin_dir, app_copy, ignore=skip)
        shutil.copytree(sdk / "netra", sdk_copy / "netra", ignore=skip)
        command = [
            str(componentize_py),
            "-d", str(wit),
            "-w", world,
            "componentize",
            "-p", str(app_copy),
            "-p", str(sdk_copy),
            "-o", str(output),
            "app",
        ]  # fmt: skip
        print(f"+ staging {plugin_dir} and {sdk / 'netra'} in {staging}", flush=True)
        print("+", shlex.join(command), flush=True)
        try:
            status = subprocess.run(command, env=env).returncode
        except OSError as error:
            raise BuildError(f"cannot run {componentize_py}: {error}; {INSTALL_HINT}") from None
    if status != 0:
        raise BuildError(f"componentize-py failed (exit status {status}) building {plugin_dir}")
    seconds = time.monotonic() - started
    size = output.stat().st_size
    print(f"built {output} ({world}, {size / 1e6:.1f} MB) in {seconds:.1f}s")
    name = manifest.get("name")
    if name and output.stem != name:
        print(
            f"note: the host loads NAME.wasm beside NAME.toml, and this manifest's "
            f"name is {name!r}, not {output.stem!r}"
        )


def main(argv=None):
    try:
        build(parse_args(sys.argv[1:] if argv is None else argv))
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
