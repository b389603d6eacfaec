"""`alca down`: remove the project's sandbox container (state and approval are kept)."""

from __future__ import annotations

import argparse

from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--force", action="store_true", help="skip the sync-conflict check (may lose changes)"
    )


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox.down import down

    down(app, force=args.force)
    return 0
