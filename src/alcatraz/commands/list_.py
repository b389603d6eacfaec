"""`alca list`: every alcatraz container of the selected engine, across projects."""

from __future__ import annotations

import argparse
import json

from alcatraz.app import App
from alcatraz.printable import printable
from alcatraz.runtime.base import LABEL_PROJECT_ID, LABEL_PROJECT_PATH, ContainerState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _status_word(state: ContainerState) -> str:
    if state is ContainerState.RUNNING:
        return "running"
    if state is ContainerState.STOPPED:
        return "stopped"
    return "unknown"


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.config.load import load_config
    from alcatraz.errors import AlcaError
    from alcatraz.paths import find_project_root
    from alcatraz.runtime.detect import resolve_runtime

    configured = "auto"
    root = find_project_root(app.cwd)
    if root is not None:
        try:
            configured = load_config(root, environ=app.environ, cwd=app.cwd).runtime
        except AlcaError:
            configured = "auto"  # listing must not depend on this project's config
    runtime, _ = resolve_runtime(
        configured, runner=app.runner, environ=app.environ, home=app.facts_home
    )
    containers = runtime.list_by_label(LABEL_PROJECT_ID)
    rows = [
        {
            "name": info.name,
            "status": _status_word(info.state),
            "project_id": info.labels.get(LABEL_PROJECT_ID, ""),
            "project_path": info.labels.get(LABEL_PROJECT_PATH, ""),
            "created": info.created_at,
            "runtime": runtime.name,
        }
        for info in containers
    ]
    branches = _branch_rows(app)
    if args.json:
        app.out(json.dumps(_with_branches(rows, branches), indent=2))
        return 0
    if not rows:
        app.out("No Alcatraz containers found.")
        _show_branches(app, branches)
        return 0
    # Labels are anyone's on a shared engine: a newline in one would forge a row.
    table = [("NAME", "STATUS", "PROJECT ID", "PROJECT PATH", "CREATED")]
    table += [
        (
            printable(r["name"]),
            r["status"],
            printable(r["project_id"][:12]),
            printable(r["project_path"]) if r["project_path"] else "(unknown)",
            printable(r["created"][:19]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        app.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    _show_branches(app, branches)
    return 0


def _with_branches(
    rows: list[dict[str, str]], branches: list[dict[str, object]]
) -> list[dict[str, object]]:
    """The containers for `--json`: a branch sandbox's carries its branch and the commits
    ahead of its base (null for the others)."""
    by_container = {str(b["container"]): b for b in branches if b["container"] is not None}
    shown: list[dict[str, object]] = []
    for entry in rows:
        found = by_container.get(entry["name"])
        branch = None if found is None else found["branch"]
        ahead = None if found is None else found["ahead"]
        shown.append({**entry, "branch": branch, "ahead": ahead})
    return shown


def _branch_rows(app: App) -> list[dict[str, object]]:
    from alcatraz.sandbox.branches import every_branch

    return every_branch(app)


def _show_branches(app: App, branches: list[dict[str, object]]) -> None:
    """Branch sandboxes (`up -b`) of every project: branch, commits ahead, container."""
    if not branches:
        return
    table = [("BRANCH", "AHEAD", "CONTAINER", "STATUS", "ISOLATION", "PROJECT")]
    for row in branches:
        ahead, container = row["ahead"], row["container"]
        table.append(
            (
                printable(str(row["branch"])),
                "-" if ahead is None else str(ahead),
                "-" if container is None else printable(str(container)),
                str(row["status"]),
                str(row["isolation"]),
                printable(str(row["project"])),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(6)]
    app.out("")
    app.out("Branch sandboxes:")
    for line in table:
        app.out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
