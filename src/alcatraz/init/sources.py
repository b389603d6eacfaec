"""`alca init --update` contacts only the sources the user confirms (issue 13 item 9).

The source of an update is line 1 of a preset file in the project, which the sandboxed
agent can rewrite: left alone, it could make the host's git contact any address (a LAN
service, a private repository the user's ssh key opens, a repository on this machine) and
copy what it finds into the project. So before any git command runs, every distinct source
is shown, escaped so that no character can disguise it, with what it would read, and:

- on a terminal, the user answers yes or no for each source (no is the default);
- without a terminal, the update is refused unless `--yes` says the sources are trusted.

Only the transports the URL check admits reach git (`GIT_ALLOW_PROTOCOL`, set by
`preset_cache.Git`), so `ext::` and remote helpers stay out even through `insteadOf` rewrites.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from alcatraz.errors import RefusedError
from alcatraz.printable import printable_ascii

if TYPE_CHECKING:
    from alcatraz.app import App
    from alcatraz.init.preset_url import PresetSource

#: The transports a preset source may use; anything else never reaches git.
ALLOWED_PROTOCOLS: Final = "https:http:ssh:git:file"


def source_notes(source: PresetSource) -> list[str]:
    """What deserves a second look about where a source points."""
    notes: list[str] = []
    if source.scheme == "file":
        notes.append("a repository on this machine, read with your permissions")
    if source.scheme in ("http", "git"):
        notes.append(f"{source.scheme}:// is not encrypted or authenticated")
    host = source.host.rsplit(":", 1)[0] if source.host.count(":") == 1 else source.host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host == "localhost" and source.scheme != "file":
            notes.append("this machine (localhost)")
        return notes
    if not address.is_global:
        notes.append("a local-network or private address, not a public server")
    return notes


def _describe(app: App, source: PresetSource, files: Sequence[tuple[str, str]]) -> None:
    app.out(f"  Source: {printable_ascii(source.display)}")
    for note in source_notes(source):
        app.out(f"    Note: {note}")
    for local, remote in files:
        app.out(f"    {printable_ascii(local)} <- {printable_ascii(remote)}")


def confirm_sources(
    app: App, groups: dict[str, tuple[PresetSource, list[tuple[str, str]]]], *, assume_yes: bool
) -> set[str]:
    """The URLs (keys of `groups`) the user agrees to contact; refuses without a terminal.

    `groups` maps each URL to its parsed source and (local file, repository path) pairs.
    """
    if assume_yes:
        for source, _files in groups.values():
            app.info(f"Updating presets from {printable_ascii(source.display)} (--yes)")
        return set(groups)
    if not app.interactive:
        shown = "\n  ".join(
            printable_ascii(s.display) + "".join(f" ({note})" for note in source_notes(s))
            for s, _ in groups.values()
        )
        raise RefusedError(
            "alca init --update would contact the sources named inside the preset files, "
            "which anything that can write the project (such as the agent) can change:\n  " + shown,
            hint="run it in a terminal to confirm each source, or add --yes if you have "
            "checked the first line of each .alca.*.toml and trust these sources",
        )
    app.out("The preset files in this project name these sources (from their first line):")
    approved: set[str] = set()
    for url, (source, files) in groups.items():
        _describe(app, source, files)
        if app.confirm("  Fetch from this source?"):
            approved.add(url)
        else:
            app.warn(f"not contacting {printable_ascii(source.display)}; its files are unchanged")
    return approved
