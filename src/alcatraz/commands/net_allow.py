"""`alca net allow NAME...`: propose adding names to `[network] egress` of `.alca.toml`.

The project directory is the agent's (decision 0010): `.alca.toml` is read and replaced
through the `openat` walk (`alcatraz.beneath`), never through a link, never a FIFO or a
huge file, and the replacement is a new file renamed over it in the same directory. The
change is shown as a diff and written only when the user says so; `alca up` then asks for
its approval like any other configuration change.
"""

from __future__ import annotations

import difflib
from typing import Any

from alcatraz.app import App
from alcatraz.errors import ConfigError, RefusedError, UsageError
from alcatraz.paths import CONFIG_NAME
from alcatraz.printable import printable_ascii


def allow(app: App, names: list[str], *, assume_yes: bool) -> int:
    from alcatraz import beneath
    from alcatraz.config.egressedit import EditError, add_egress_entries
    from alcatraz.config.load import load_config
    from alcatraz.config.tomlread import MAX_FILE_BYTES
    from alcatraz.sandbox import project as sandbox

    root = sandbox.locate(app)
    wanted = _parse(names)
    # The walk first: a linked, special or huge .alca.toml is refused before anything reads it.
    data, status = beneath.read_beneath(root, CONFIG_NAME, MAX_FILE_BYTES)
    existing = configured_egress(load_config(root, environ=app.environ, cwd=app.cwd))
    if existing is None:
        raise RefusedError(
            "the internet is open to this sandbox ([network] egress is not set); nothing to allow",
            hint="to restrict it, list what it may reach in [network] egress (docs/config.md)",
        )
    missing = _not_yet_allowed(wanted, existing)
    if not missing:
        shown = ", ".join(printable_ascii(n) for n in names)
        app.out(f"Already allowed by [network] egress: {shown}. Nothing to change.")
        return 0
    text = data.decode("utf-8")  # the loader has just read it as strict UTF-8
    try:
        edited = add_egress_entries(text, missing)
    except EditError as error:
        raise ConfigError(
            "cannot add the entries to [network] egress automatically",
            file=CONFIG_NAME,
            hint=str(error),
        ) from None
    app.err(_diff(text, edited))
    if not assume_yes and not app.interactive:
        raise RefusedError(
            f"{CONFIG_NAME} not changed: there is no terminal to confirm the change",
            hint="run it on a terminal, or add -y to write it without asking",
        )
    if not assume_yes and not app.confirm(f"Write this change to {CONFIG_NAME}?"):
        app.out(f"{CONFIG_NAME} not changed.")
        return 1
    beneath.replace_beneath(root, CONFIG_NAME, edited.encode("utf-8"), status)
    app.out(f"Updated {CONFIG_NAME}: run 'alca up' to apply (it asks you to approve the change).")
    return 0


def configured_egress(config: Any) -> tuple[Any, ...] | None:
    """`config.egress`: None when absent (the internet is open). REPLACE with the attribute
    itself once `Config.egress` lands (issue 15, the config change written in parallel)."""
    egress = config.egress
    return None if egress is None else tuple(egress)


def _parse(names: list[str]) -> list[Any]:
    from alcatraz.config.netgrammar import GrammarError, parse_egress_rule

    rules = []
    for name in names:
        try:
            rules.append(parse_egress_rule(name))
        except GrammarError as error:
            raise UsageError(error.message, hint=error.hint) from None
    return rules


def _not_yet_allowed(wanted: list[Any], existing: tuple[Any, ...]) -> list[str]:
    """The canonical text of each wanted entry no existing entry covers, in order, once."""
    from alcatraz.config.egressentry import covers
    from alcatraz.config.netgrammar import render_egress_rule

    missing: list[str] = []
    for rule in wanted:
        text = render_egress_rule(rule)
        if text not in missing and not any(covers(e, rule) for e in existing):
            missing.append(text)
    return missing


def _diff(before: str, after: str) -> str:
    """A unified diff of the file (App escapes whatever the agent may have put in it)."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{CONFIG_NAME}",
        tofile=f"b/{CONFIG_NAME}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n")
