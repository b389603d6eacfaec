"""`alca config show|schema`: what the sandbox will actually be built from."""

from __future__ import annotations

import argparse
import json

from alcatraz.app import App
from alcatraz.errors import NotInitializedError
from alcatraz.paths import find_project_root


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="<subcommand>", required=True)
    show = sub.add_parser(
        "show", help="Show the effective merged configuration and where each value came from"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("schema", help="Print the JSON Schema of .alca.toml")


def main(args: argparse.Namespace, app: App) -> int:
    if args.config_command == "schema":
        from alcatraz.config.schema import schema_text

        app.write(schema_text())
        return 0
    from alcatraz.config.load import load_config
    from alcatraz.config.show import document, origins, render_text

    root = find_project_root(app.cwd)
    if root is None:
        raise NotInitializedError(
            "configuration not found: run 'alca init' first",
            hint=f"no .alca.toml in {app.cwd} or any parent directory",
        )
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    if args.json:
        payload = {
            "project_root": str(config.project_root),
            "files": [str(f) for f in config.files],
            "config": document(config),
            "origin": origins(config),
        }
        app.out(json.dumps(payload, indent=2))
    else:
        app.write(render_text(config))
    return 0
