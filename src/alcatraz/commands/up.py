"""`alca up`: create, start, reuse or rebuild the project's sandbox (reference §1.3, §3.3)."""

from __future__ import annotations

import argparse

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "-f", "--force", action="store_true", help="rebuild without asking if the config drifted"
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="approve a changed configuration (after showing it)",
    )
    parser.add_argument(
        "-b", "--branch", metavar="NAME", help="the sandbox of branch NAME (parallel agents)"
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="REF",
        help="with -b: start the new branch from REF (default: HEAD)",
    )


def main(args: argparse.Namespace, app: App) -> int:
    if args.branch is not None:
        from alcatraz.sandbox.branches import up_branch
        from alcatraz.sandbox.branchname import check_branch_name

        name = check_branch_name(args.branch)
        up_branch(app, name, start=args.start, force=args.force, assume_yes=args.yes)
        return 0
    if args.start is not None:
        from alcatraz.errors import UsageError

        raise UsageError("--from needs -b NAME", hint="e.g. alca up -b fix-login --from main")
    from alcatraz.sandbox.up import up

    up(app, force=args.force, assume_yes=args.yes)
    return 0
