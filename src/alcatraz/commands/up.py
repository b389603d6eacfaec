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


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox.up import up

    up(app, force=args.force, assume_yes=args.yes)
    return 0
