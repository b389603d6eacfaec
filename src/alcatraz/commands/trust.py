"""`alca trust`: review and approve the project's configuration."""

from __future__ import annotations

import argparse

from alcatraz.app import App
from alcatraz.errors import RefusedError
from alcatraz.sandbox import trust


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--yes", action="store_true", help="approve without asking (the diff is still shown)"
    )


def main(args: argparse.Namespace, app: App) -> int:
    from alcatraz.sandbox import project as sandbox

    root = sandbox.locate(app)
    config = sandbox.load(app, root)
    project = sandbox.open_project(app, root)
    with project.store.lock():
        result = trust.check(config, project.state_dir)
        if result.approved:
            app.out("Configuration already approved.")
            return 0
        app.out(result.diff.rstrip())
        if not (args.yes or app.confirm("Approve this configuration?")):
            raise RefusedError(
                "configuration not approved", hint="run 'alca trust --yes' to approve it"
            )
        trust.approve(config, project.state_dir)
    app.done("Configuration approved")
    return 0
