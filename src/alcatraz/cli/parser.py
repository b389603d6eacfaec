"""Dispatch through the argparse tree, built lazily: only the chosen command's module is imported.

Command modules expose `add_arguments(parser)` and `main(args, app) -> int` and never
print directly except through `App`. The commands themselves are declared in
`alcatraz.commands.registry`, which `alca completion` reads too.
"""

from __future__ import annotations

from collections.abc import Sequence

from alcatraz.commands.registry import COMMANDS, AlcaParser, build_parser

__all__ = ["COMMANDS", "AlcaParser", "build_parser", "dispatch"]


def _chosen(args: Sequence[str]) -> str | None:
    for token in args:
        if token.startswith("-"):
            continue
        return token if token in COMMANDS else None
    return None


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
