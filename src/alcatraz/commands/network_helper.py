"""`alca network-helper install|uninstall|status` (reference §1.8, status read from the kernel)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from alcatraz.app import App

if TYPE_CHECKING:
    from alcatraz.sandbox.nethelper import Helper


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="helper_command", metavar="<subcommand>", required=True)
    for name, text in (
        ("install", "Make isolation rules persistent (and, on macOS, start the helper)"),
        ("uninstall", "Remove the helper and all alcatraz rules"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("-y", "--yes", action="store_true", help="do not ask")
    sub.add_parser("status", help="Show what is installed and what the kernel has loaded")


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox import nethelper as isolation

    helper = isolation.Helper.for_app(app)
    if args.helper_command == "status":
        return _status(app, helper)
    if args.helper_command == "install":
        if helper.installed():
            app.out("Network helper already installed and up to date.")
            return 0
        app.out("This will install the network helper to manage firewall rules.")
        if not (args.yes or app.confirm("Continue?")):
            from alcatraz.errors import RefusedError

            raise RefusedError(
                "network helper not installed", hint="run 'alca network-helper install --yes'"
            )
        for line in helper.install():
            app.step(line)
        app.done("Network helper installed.")
        return 0
    if not helper.installed() and not helper.table_exists():
        app.out("Network helper not installed.")
        return 0
    app.out("This will remove the network helper and all rules.")
    loaded = helper.loaded_projects()
    if loaded:
        app.out(
            f"{len(loaded)} sandbox network(s) have rules loaded: processes running there lose "
            "isolation until 'alca up' (or 'alca down') in their project."
        )
    if not (args.yes or app.confirm("Continue?")):
        from alcatraz.errors import RefusedError

        raise RefusedError(
            "network helper left in place", hint="run 'alca network-helper uninstall --yes'"
        )
    for line in helper.uninstall():
        app.step(line)
    app.done("Network helper uninstalled.")
    return 0


def _status(app: App, helper: Helper) -> int:
    installed = helper.installed()
    keys = helper.loaded_projects()
    app.out("Network Helper Status")
    app.out("=====================")
    app.out(f"Status: {'Installed' if installed else 'Not installed'}")
    app.out(f"Mechanism: {helper.describe()}")
    app.out()
    app.out("Helper Summary:")
    app.out(f"  Installed: {'Yes' if installed else 'No'}")
    if keys:
        app.out(f"  Rules applied: Yes ({len(keys)} project{'s' if len(keys) != 1 else ''} loaded)")
    else:
        app.out("  Rules applied: No")
    app.out()
    app.out("Loaded projects (from the kernel):")
    for key, detail in sorted(keys.items()):
        app.out(f"  - {key}: {detail}")
    if not keys:
        app.out("  (none)")
    return 0
