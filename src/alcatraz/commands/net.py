"""`alca net log`: what the sandbox tried to reach and was refused (nftables, the egress
daemon's events); `alca net allow NAME`: propose adding a name to `[network] egress`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from alcatraz.app import App
from alcatraz.printable import printable_ascii

#: Rows of each refusal table in the text output (the sandbox can invent names without end);
#: `--json` has them all.
MAX_ROWS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="net_command", metavar="<subcommand>", required=True)
    log = sub.add_parser("log", help="Blocked destinations and refused names of this sandbox")
    log.add_argument("--json", action="store_true", help="machine-readable output")
    allow = sub.add_parser(
        "allow", help="Propose adding names to [network] egress of the project's .alca.toml"
    )
    allow.add_argument(
        "names", nargs="+", metavar="NAME", help="an egress entry: example.com, *.example.com:443"
    )
    allow.add_argument("-y", "--yes", action="store_true", help="write the change without asking")


def main(args: argparse.Namespace, app: App) -> int:
    if args.net_command == "allow":
        from alcatraz.commands import net_allow

        return net_allow.allow(app, list(args.names), assume_yes=bool(args.yes))
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
    data = with_events(data, isolation.egress_report(project.state_dir))
    if args.json:
        app.out(json.dumps(data, indent=2))
        return 0
    for line in render_log(data):
        app.out(line)
    return 0


def with_events(data: dict[str, Any], events: dict[str, Any]) -> dict[str, Any]:
    """`data` with the refused names and connections, and each blocked destination joined
    with the names that resolved to it."""
    resolved: dict[str, list[str]] = events.get("resolved", {})
    destinations = [
        {**entry, "names": resolved.get(str(entry.get("address")), [])}
        for entry in data.get("destinations") or []
    ]
    joined = {**data, "refused_names": events.get("refused_names", [])}
    joined["refused_connections"] = events.get("refused_connections", [])
    if "destinations" in data:
        joined["destinations"] = destinations
    return joined


def render_log(data: dict[str, Any]) -> list[str]:
    """The text of `net log` for the report `data` (names escaped here)."""
    state = data.get("state")
    if state == "none":
        return ["No sandbox network yet: run 'alca up'.", *_refusals(data)]
    if state == "off" or data.get("lan") == "all":  # ["*"], with or without a proxy
        return ['Network isolation is off (lan-access = ["*"]): nothing is blocked or logged.']
    lines = [
        f"Network isolation: {state} on {data.get('network')} ({data.get('subnet')}); "
        f"{data.get('blocked', 0)} packets blocked in total"
    ]
    destinations: list[dict[str, Any]] = list(data.get("destinations") or [])
    if not destinations:
        lines.append("No blocked destinations recorded (entries expire after a day).")
    else:
        rows = [
            [str(d["address"]), str(d["packets"]), _names(d.get("names") or [])]
            for d in destinations
        ]
        with_names = any(row[2] for row in rows)
        header = ["DESTINATION", "PACKETS", "NAMES (resolved to it)"]
        lines += ["", *_table(header if with_names else header[:2], rows)]
    return lines + _refusals(data)


def _refusals(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    names: list[dict[str, Any]] = list(data.get("refused_names") or [])
    if names:
        lines += ["", "Refused names (not in [network] egress; the sandbox got NXDOMAIN):"]
        rows = [
            [printable_ascii(n["name"]), str(n["count"]), n["first"], n["last"]]
            for n in names[:MAX_ROWS]
        ]
        lines += _table(["NAME", "COUNT", "FIRST", "LAST"], rows) + _more(len(names))
    connections: list[dict[str, Any]] = list(data.get("refused_connections") or [])
    if connections:
        lines += ["", "Refused connections (TLS SNI or HTTP Host not in egress; reset):"]
        rows = [
            [
                printable_ascii(c["name"]),
                _endpoint(str(c["address"]), int(c["port"])),
                str(c["count"]),
                c["first"],
                c["last"],
            ]
            for c in connections[:MAX_ROWS]
        ]
        lines += _table(["NAME", "ADDRESS", "COUNT", "FIRST", "LAST"], rows)
        lines += _more(len(connections))
    if names or connections:
        lines += ["", "To allow one: alca net allow NAME (then 'alca up' applies it)."]
    return lines


def _more(count: int) -> list[str]:
    if count <= MAX_ROWS:
        return []
    return [f"... and {count - MAX_ROWS} more, least recent ('alca net log --json' lists all)"]


def _names(names: list[str]) -> str:
    shown = [printable_ascii(name) for name in names[:5]]
    return ", ".join(shown) + (f" (+{len(names) - 5})" if len(names) > 5 else "")


def _endpoint(address: str, port: int) -> str:
    shown = printable_ascii(address)
    return f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns; the last one is not padded."""
    count = len(header)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(count)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) if i < count - 1 else row[i] for i in range(count)]
        lines.append("  ".join(cells))
    return lines


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
