"""The argparse tree, built lazily: only the chosen command's module is imported.

Command modules expose `add_arguments(parser)` and `main(args, app) -> int` and never
print directly except through `App`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import NoReturn

from alcatraz import __version__
from alcatraz.errors import UsageError

#: name -> (module, one-line summary). Order is the order of `alca --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("alcatraz.commands.init", "Initialize .alca.toml configuration"),
    "up": ("alcatraz.commands.up", "Start the sandbox (use -f to rebuild on drift)"),
    "down": ("alcatraz.commands.down", "Stop and remove the sandbox container"),
    "run": ("alcatraz.commands.run", "Execute a command in the sandbox"),
    "status": ("alcatraz.commands.status", "Show sandbox status and config drift"),
    "list": ("alcatraz.commands.list_", "List all alcatraz containers"),
    "cleanup": ("alcatraz.commands.cleanup", "Remove orphaned containers"),
    "trust": ("alcatraz.commands.trust", "Review and approve the project configuration"),
    "net": ("alcatraz.commands.net", "Show what the sandbox tried to reach and was refused"),
    "network-helper": (
        "alcatraz.commands.network_helper",
        "Manage the network isolation helper (install|uninstall|status)",
    ),
    "config": ("alcatraz.commands.config", "Show the effective configuration or its schema"),
    "experimental": ("alcatraz.commands.experimental", "Experimental: sync check|resolve"),
    "doctor": ("alcatraz.commands.doctor", "Check engines, nftables, Mutagen and the config"),
    "completion": ("alcatraz.commands.completion", "Print a shell completion script"),
}


class AlcaParser(argparse.ArgumentParser):
    """argparse, but usage errors become `UsageError` (exit 64) instead of exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"run '{self.prog} --help' for usage")


def _chosen(args: Sequence[str]) -> str | None:
    for token in args:
        if token.startswith("-"):
            continue
        return token if token in COMMANDS else None
    return None


def build_parser(chosen: str | None) -> AlcaParser:
    parser = AlcaParser(
        prog="alca",
        description="Run AI code agents with full permissions, inside a sandbox.",
    )
    parser.add_argument("-v", "--version", action="version", version=f"alca version {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, summary) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_module=module)
    return parser


def dispatch(args: Sequence[str]) -> int:
    from alcatraz.app import App

    chosen = _chosen(args)
    parser = build_parser(chosen)
    namespace = parser.parse_args(list(args))
    if namespace.command is None:
        parser.print_help()
        return 0
    app = App(quiet=bool(getattr(namespace, "quiet", False)))
    result: int = namespace._module.main(namespace, app)
    return result
