"""`alca init`: create `.alca.toml` from a template, or download/update git presets.

Three flows, all in the current directory:
- `alca init [-t NAME]` writes `.alca.toml` from a template (menu on a terminal; without one
  `--template` is required, so scripts never hang) and adds alcatraz's lines to `.gitignore`;
- `alca init git+URL[#[commit]:[dir]]` copies preset files (`alcatraz.init.presets`);
- `alca init --update` refreshes the presets copied earlier;
- `alca init --agent NAME` writes the `agent` template with one agent preset added
  (`alcatraz.init.agents`: install step, its config mounts, its API keys by name).

An existing `.alca.toml` is never touched: the check and the creation are one atomic step.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from alcatraz.errors import AlcaError, ExitCode, UsageError, quote
from alcatraz.init import templates
from alcatraz.paths import CONFIG_NAME

if TYPE_CHECKING:
    from alcatraz.app import App


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="git+URL",
        help="download preset files (.alca.*.toml) from git+<clone-url>[#[commit]:[dir]]",
    )
    parser.add_argument(
        "-t",
        "--template",
        metavar="NAME",
        help="template to start from: " + ", ".join(templates.template_names()),
    )
    parser.add_argument(
        "-a",
        "--agent",
        metavar="AGENT",
        help="start from the agent template with this agent set up (claude, codex, gemini, "
        "aider, opencode; see docs/agents.md)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="update previously downloaded preset files to their repository's newest commit "
        "(each source they name is shown and must be confirmed)",
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="with --update: contact the sources the preset files name without asking "
        "(needed without a terminal)",
    )


def main(args: argparse.Namespace, app: App) -> int:
    template: str | None = args.template
    source: str | None = args.source
    agent: str | None = args.agent
    if args.yes and not args.update:
        raise UsageError("--yes only applies to --update")
    if agent is not None:
        if args.update or source is not None:
            raise UsageError("cannot use --agent with --update or a preset URL")
        if template not in (None, "agent"):
            raise UsageError(
                "--agent builds on the agent template; it cannot be combined with "
                f"--template {quote(template)}"
            )
        return init_from_agent(app, agent)
    if args.update:
        if template is not None:
            raise UsageError("cannot use --template with --update")
        if source is not None:
            raise UsageError(
                "cannot use a preset URL with --update",
                hint="--update refreshes every preset already in this directory from the URL "
                "recorded in it; to add presets, run 'alca init git+URL'",
            )
        from alcatraz.init import presets

        return presets.update(app, assume_yes=args.yes)
    if source is not None:
        if not source.startswith("git+"):
            raise UsageError(
                f"invalid preset source {quote(source)}: expected git+<clone-url>[#[commit]:[dir]]",
                hint="to create .alca.toml from a template, run 'alca init --template NAME' "
                "(" + ", ".join(templates.template_names()) + ")",
            )
        if template is not None:
            raise UsageError("cannot use --template with a preset URL")
        from alcatraz.init import presets

        return presets.download(app, source)
    return init_from_template(app, template)


def _unknown_template(name: str) -> UsageError:
    return UsageError(
        f"unknown template {quote(name)}, valid options: " + ", ".join(templates.template_names())
    )


def init_from_template(app: App, name: str | None) -> int:
    """Write `.alca.toml` from a template, then make sure `.gitignore` has alcatraz's lines."""
    if name is not None and name not in templates.TEMPLATES:
        raise _unknown_template(name)
    directory = Path(os.path.abspath(app.cwd))
    config_path = directory / CONFIG_NAME
    if os.path.lexists(config_path):
        raise _already_exists(config_path)
    if name is None:
        name = _choose_template(app)
    _write_config(app, config_path, templates.TEMPLATES[name])
    return ExitCode.OK


def init_from_agent(app: App, agent: str) -> int:
    """Write `.alca.toml` for one agent; host paths missing now are left commented out."""
    from alcatraz.init import agents

    preset = agents.load_preset(agent)
    config_path = Path(os.path.abspath(app.cwd)) / CONFIG_NAME
    if os.path.lexists(config_path):
        raise _already_exists(config_path)
    template, notes = agents.template_for(preset, app.environ)
    _write_config(app, config_path, template)
    for note in notes:
        app.info(f"Note: {note} in the file.")
    app.info(f"Start the agent with: {preset.unrestricted}")
    return ExitCode.OK


def _write_config(app: App, config_path: Path, template: templates.Template) -> None:
    """Create the file atomically (never over an existing one), then update .gitignore."""
    directory = config_path.parent
    text = templates.render(template, schema_line=_schema_line(app))
    from alcatraz.init.files import write_text_atomic

    try:
        write_text_atomic(config_path, text, exclusive=True)
    except FileExistsError:
        raise _already_exists(config_path) from None
    except OSError as error:
        raise AlcaError(
            f"cannot create {config_path}: {error.strerror or error}",
            hint="check that the directory exists and is writable",
        ) from None
    try:
        update_gitignore(directory / ".gitignore")
    except OSError as error:
        app.warn(
            f"could not update .gitignore ({error.strerror or error}); add these lines "
            "yourself: " + ", ".join(templates.GITIGNORE_ENTRIES)
        )
    app.done(f"Created {config_path}")
    app.info("Edit this file to customize your container settings.")


def _already_exists(path: Path) -> AlcaError:
    return AlcaError(
        f"configuration file already exists: {path}",
        hint="edit it, or remove it first to start again from a template",
        exit_code=ExitCode.CANT_CREATE,
    )


def _schema_line(app: App) -> str:
    """The `#:schema` comment; the schema copy is refreshed so editors match this version."""
    from alcatraz.config.schema import schema_comment
    from alcatraz.init.files import install_user_schema

    try:
        install_user_schema(app.home)
    except OSError as error:
        app.warn(f"could not install the editor schema in {app.home} ({error.strerror or error})")
    return schema_comment(app.home)


def _choose_template(app: App) -> str:
    """Ask on a terminal; refuse without one, so that CI never waits for an answer."""
    names = templates.template_names()
    if not app.interactive:
        raise UsageError(
            "no template given and no terminal to ask on",
            hint="pass --template NAME, one of: " + ", ".join(names),
        )
    choices = list(templates.TEMPLATES)
    choices.remove(templates.DEFAULT_TEMPLATE)
    choices.insert(0, templates.DEFAULT_TEMPLATE)
    width = max(len(n) for n in choices)
    app.out("Select a template:")
    for number, choice in enumerate(choices, 1):
        app.out(f"  {number}) {choice.ljust(width)}  {templates.TEMPLATES[choice].label}")
    for _ in range(3):
        app.write(f"Enter a number [1 = {choices[0]}]: ")
        answer = app.stdin.readline()
        if not answer:
            raise UsageError(
                "template selection cancelled", hint="pass --template NAME to choose without a menu"
            )
        answer = answer.strip()
        if not answer:
            return choices[0]
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return choices[int(answer) - 1]
        if answer in templates.TEMPLATES:
            return answer
        app.out(f"Please enter a number from 1 to {len(choices)}.")
    raise UsageError("no valid template chosen", hint="pass --template NAME")


def update_gitignore(path: Path) -> bool:
    """Append the missing alcatraz lines; returns whether the file changed.

    Existing content is kept byte for byte, including its line endings and a missing final
    newline (the appended block then also ends without one).
    """
    try:
        original = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        original = ""
    present = {line.strip() for line in original.splitlines()}
    missing = [entry for entry in templates.GITIGNORE_ENTRIES if entry not in present]
    if not missing:
        return False
    newline = "\r\n" if "\r\n" in original else "\n"
    block = newline.join(missing)
    if not original:
        text = block + newline
    elif original.endswith("\n"):
        text = original + block + newline
    else:
        text = original + newline + block
    from alcatraz.init.files import write_text_atomic

    write_text_atomic(path, text)
    return True
