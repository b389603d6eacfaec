"""`alca run <cmd> [args...]`: argparse front for help; the work is in `sandbox.enter`."""

from __future__ import annotations

import argparse

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-b", "--branch", metavar="NAME", help="the sandbox of branch NAME (parallel agents)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and its arguments")


def main(args: argparse.Namespace, app: App) -> int:
    if args.branch is not None:
        from alcatraz.sandbox.branches import run_branch
        from alcatraz.sandbox.branchname import check_branch_name

        return run_branch(app, check_branch_name(args.branch), list(args.command))
    from alcatraz.sandbox.enter import run

    return run(list(args.command))
