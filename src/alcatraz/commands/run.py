"""`alca run <cmd> [args...]`: argparse front for help; the work is in `sandbox.enter`."""

from __future__ import annotations

import argparse

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and its arguments")


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox.enter import run

    return run(list(args.command))
