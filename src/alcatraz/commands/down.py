"""`alca down`: remove the project's sandbox container (state and approval are kept)."""

from __future__ import annotations

import argparse

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--force",
        action="store_true",
        help="skip the sync-conflict check (may lose changes); with -b: the uncommitted-work check",
    )
    parser.add_argument(
        "-b", "--branch", metavar="NAME", help="the sandbox of branch NAME (parallel agents)"
    )
    parser.add_argument(
        "--purge", action="store_true", help="with -b: also remove the branch's private copy"
    )


def main(args: argparse.Namespace, app: App) -> int:
    if args.branch is not None:
        from alcatraz.sandbox.branches import down_branch
        from alcatraz.sandbox.branchname import check_branch_name

        down_branch(app, check_branch_name(args.branch), force=args.force, purge=args.purge)
        return 0
    if args.purge:
        from alcatraz.errors import UsageError

        raise UsageError("--purge needs -b NAME", hint="e.g. alca down -b fix-login --purge")
    from alcatraz.sandbox.down import down

    down(app, force=args.force)
    return 0
