"""`alca net log`: what the sandbox tried to reach and was refused (from nftables)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="net_command", metavar="<subcommand>", required=True)
    log = sub.add_parser("log", help="Blocked destinations of this project's sandbox")
    log.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.config.load import load_config
    from alcatraz.sandbox import netreport as isolation
    from alcatraz.sandbox import project as sandbox

    root = sandbox.locate(app)
    config = load_config(root, environ=app.environ, cwd=app.cwd)
    project = sandbox.open_project(app, root)
    record = project.state.isolation
    data: dict[str, Any] = (
        isolation.report(app, config, project.project_id, record, pid=_sandbox_pid(app, project))
        if project.project_id and record
        else {"state": "none"}
    )
    if args.json:
        app.out(json.dumps(data, indent=2))
        return 0
    state = data.get("state")
    if state == "none":
        app.out("No sandbox network yet: run 'alca up'.")
        return 0
    if state == "off" or data.get("lan") == "all":  # ["*"], with or without a proxy
        app.out('Network isolation is off (lan-access = ["*"]): nothing is blocked or logged.')
        return 0
    app.out(
        f"Network isolation: {state} on {data.get('network')} ({data.get('subnet')}); "
        f"{data.get('blocked', 0)} packets blocked in total"
    )
    destinations: list[dict[str, object]] = list(data.get("destinations") or [])
    if not destinations:
        app.out("No blocked destinations recorded (entries expire after a day).")
        return 0
    app.out()
    width = max(len("DESTINATION"), *(len(str(d["address"])) for d in destinations))
    app.out(f"{'DESTINATION'.ljust(width)}  PACKETS")
    for entry in destinations:
        app.out(f"{str(entry['address']).ljust(width)}  {entry['packets']}")
    return 0


def _sandbox_pid(app: App, project: Any) -> int:
    """The running sandbox's pid (0 if none), to read the layer in its own namespace too."""
    from alcatraz.errors import AlcaError
    from alcatraz.sandbox import project as sandbox

    try:
        runtime = sandbox.engine_for(app, "auto", project.state)
        info = sandbox.find_container(runtime, project)
    except AlcaError:
        return 0
    return info.pid if info is not None else 0
