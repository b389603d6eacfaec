"""Every `alca` command, declared once: the CLI's parser and `alca completion` derive from it.

It sits below the command modules so that `commands/completion.py` can describe the parser
the CLI builds without importing `cli/`. Building the parser imports only the chosen
command's module; `full_parser` imports them all (only `alca completion` pays for that).
"""

from __future__ import annotations

import argparse
import importlib
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
    "net": (
        "alcatraz.commands.net",
        "Show what the sandbox was refused (log); allow a name in [network] egress (allow)",
    ),
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


def build_parser(chosen: str | None) -> AlcaParser:
    """`alca`'s parser: every command by name, and the arguments of `chosen` only."""
    return _build(set() if chosen is None else {chosen})


def full_parser() -> AlcaParser:
    """`alca`'s parser with every command's arguments (what completion describes)."""
    return _build(set(COMMANDS))


def _build(detailed: set[str]) -> AlcaParser:
    parser = AlcaParser(
        prog="alca",
        description="Run AI code agents with full permissions, inside a sandbox.",
    )
    parser.add_argument("-v", "--version", action="version", version=f"alca version {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, summary) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=summary, description=summary)
        if name in detailed:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_module=module)
    return parser
