"""Presets: `.alca.*.toml` files shared through a git repository (`alca init git+URL`).

A preset is copied, not referenced: the project's `.alca.toml` includes `.alca.*.toml`, so a
downloaded file takes part in every load without any network access. Line 1 of each copy
records where it came from (`# Alcatraz Preset Source: git+URL#COMMIT:PATH`), which is what
`alca init --update` follows.

This module holds the two flows and their questions; the URL and the source comment are in
`preset_url`, the git caches in `preset_cache`, the consent to contact a source in `sources`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from alcatraz.errors import AlcaError, ExitCode, UsageError, quote
from alcatraz.init.files import toml_problem, write_text_atomic
from alcatraz.init.preset_cache import (
    MAX_PRESET_BYTES,
    PRESET_PATTERNS,
    FetchError,
    Git,
    cached_head,
    fetch_commit,
    list_presets,
    read_preset,
    resolve,
)
from alcatraz.init.preset_url import (
    SourceComment,
    cache_dir,
    format_source_comment,
    parse_source,
    parse_source_comment,
    strip_source_comments,
)
from alcatraz.init.sources import confirm_sources
from alcatraz.printable import printable_ascii

if TYPE_CHECKING:
    from alcatraz.app import App


def _credentials_warning(app: App) -> None:
    app.warn(
        "The URL contains credentials that will be stored in downloaded files.\n"
        "These files may be committed to version control. Consider using SSH keys or\n"
        "git credential helpers instead."
    )


# -- interaction ----------------------------------------------------------------------------


def _label(name: str) -> str:
    return f"{name}  (example file — .example suffix kept)" if name.endswith(".example") else name


def _parse_selection(answer: str, count: int) -> list[int] | None:
    """`1,3` or `2-4` (1-based) -> 0-based indices; an empty answer means all."""
    answer = answer.strip()
    if not answer:
        return list(range(count))
    chosen: list[int] = []
    for item in answer.replace(" ", ",").split(","):
        if not item:
            continue
        first, dash, last = item.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return None
        low, high = int(first), int(last) if dash else int(first)
        if not 1 <= low <= high <= count:
            return None
        chosen.extend(i - 1 for i in range(low, high + 1) if i - 1 not in chosen)
    return chosen or None


def select_files(app: App, names: list[str]) -> list[str]:
    """A numbered multi-select on a terminal; without one, every file (nothing to ask)."""
    if not app.interactive:
        return list(names)
    app.out("Select preset files to download:")
    for number, name in enumerate(names, 1):
        app.out(f"  {number}) {_label(name)}")
    for _ in range(3):
        app.write("Numbers separated by commas (Enter = all): ")
        answer = app.stdin.readline()
        if not answer:
            raise AlcaError("preset selection cancelled; nothing was downloaded")
        chosen = _parse_selection(answer, len(names))
        if chosen is not None:
            return [names[i] for i in chosen]
        app.out(f"Please enter numbers between 1 and {len(names)}, e.g. 1,3")
    raise UsageError("no valid selection; nothing was downloaded")


# -- flows ----------------------------------------------------------------------------------


def download(app: App, text: str) -> int:
    """`alca init git+URL[#[commit]:[dir]]`: copy the chosen presets into the current directory."""
    source = parse_source(text)
    if source.has_credentials:
        _credentials_warning(app)
    git = Git(app)
    cache = cache_dir(app.home, source)
    commit = fetch_commit(git, cache, source, source.commit)
    names = list_presets(git, cache, source, commit)
    if not names:
        where = f"directory {quote(source.directory)}" if source.directory else "repository root"
        raise AlcaError(
            f"no preset files (.alca.*.toml) found in {where}",
            hint=f"{source.display} at commit {commit[:12]} has no .alca.*.toml "
            "or .alca.*.toml.example file there",
        )
    planned: list[tuple[str, str]] = []
    problems: list[str] = []
    for name in select_files(app, names):
        target = app.cwd / name
        if os.path.lexists(target):
            if not app.interactive:
                app.warn(
                    f"{name} already exists and was not overwritten "
                    "(delete it first, or run this in a terminal to confirm)"
                )
                continue
            if not app.confirm(f"File {name} already exists. Overwrite?"):
                continue
        repo_path = f"{source.directory}/{name}" if source.directory else name
        content = read_preset(git, cache, commit, repo_path)
        if content is None:  # listed a moment ago: only a broken cache gets here
            raise AlcaError(f"{repo_path} vanished from the preset cache {cache}")
        problem = toml_problem(content)
        if problem:
            problems.append(f"{name}: {problem}")
            continue
        header = format_source_comment(source.url, commit, repo_path)
        planned.append((name, f"{header}\n{content}"))
    if problems:
        raise AlcaError(
            f"preset files from {source.display} are not valid TOML; nothing was written:\n  "
            + "\n  ".join(problems),
            hint="fix them in the preset repository, or pin an older commit with #<commit>",
            exit_code=ExitCode.CONFIG,
        )
    for name, body in planned:
        write_text_atomic(app.cwd / name, body)
        app.info(f"Downloaded {name}")
    return ExitCode.OK


@dataclass(frozen=True)
class _Managed:
    path: Path
    text: str
    origin: SourceComment


def _read_regular(path: Path) -> str | None:
    """The text of a regular file, or None for anything else; never follows a link or
    blocks (the agent may swap in a FIFO or a link after the directory was listed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(MAX_PRESET_BYTES + 1)
    if len(data) > MAX_PRESET_BYTES:
        raise OSError(f"larger than {MAX_PRESET_BYTES} bytes")
    return data.decode("utf-8")


def _managed_files(app: App) -> list[_Managed]:
    """Preset copies in the current directory, i.e. files that carry a source comment."""
    found: list[_Managed] = []
    for path in sorted(app.cwd.iterdir()):
        if not any(fnmatchcase(path.name, p) for p in PRESET_PATTERNS):
            continue
        shown = printable_ascii(path.name)
        if path.is_symlink():
            app.warn(f"{shown} is a symbolic link, not a downloaded preset; skipped")
            continue
        try:
            text = _read_regular(path)
        except (OSError, UnicodeDecodeError) as error:
            app.warn(f"cannot read {shown} ({printable_ascii(str(error))}); skipped")
            continue
        if text is None:
            continue
        try:
            origin = parse_source_comment(text)
        except UsageError as error:
            # Already printable ASCII (the comment is checked first); escaped only if not.
            message = error.message
            if not all(0x20 <= ord(ch) < 0x7F for ch in message):
                message = printable_ascii(message)
            app.warn(f"{shown}: {message}; skipped")
            continue
        if origin is None:
            continue
        if not any(fnmatchcase(origin.path.rsplit("/", 1)[-1], p) for p in PRESET_PATTERNS):
            app.warn(
                f"{shown}: its source names {printable_ascii(origin.path)}, which is not "
                "a preset file (.alca.*.toml); skipped"
            )
            continue
        found.append(_Managed(path, text, origin))
    return found


def update(app: App, *, assume_yes: bool = False) -> int:
    """`alca init --update`: bring every downloaded preset to its repository's newest commit.

    Only sources the user confirms are contacted (`sources.confirm_sources`).
    """
    managed = _managed_files(app)
    if not managed:
        return ExitCode.OK
    groups: dict[str, list[_Managed]] = {}
    for item in managed:
        groups.setdefault(item.origin.source.url, []).append(item)
    approved = confirm_sources(
        app,
        {
            url: (files[0].origin.source, [(f.path.name, f.origin.path) for f in files])
            for url, files in groups.items()
        },
        assume_yes=assume_yes,
    )
    git = Git(app)
    unreachable: list[str] = []
    invalid: list[str] = []
    for url, files in groups.items():
        if url not in approved:
            continue
        source = files[0].origin.source
        cache = cache_dir(app.home, source)
        try:
            commit = fetch_commit(git, cache, source, None)
        except FetchError as error:
            cached = cached_head(git, cache)
            shown = printable_ascii(source.display)
            reason = printable_ascii(error.reason)  # git's text: the remote's words
            if cached is None:
                app.warn(f"failed to fetch {shown}: {reason}. No cached copy.")
                unreachable.append(shown)
                continue
            app.warn(f"failed to fetch {shown}: {reason}. Using cached version.")
            commit = cached
        for item in files:
            _update_one(app, git, cache, item, commit, invalid)
    if invalid:
        raise AlcaError(
            "the new versions of these presets are not valid TOML; the local files were left "
            "unchanged:\n  " + "\n  ".join(invalid),
            hint="fix them in the preset repository, then run 'alca init --update' again",
            exit_code=ExitCode.CONFIG,
        )
    if unreachable:
        raise AlcaError(
            "could not update presets from " + ", ".join(unreachable),
            hint="check your network and access to the repository, then try again",
        )
    return ExitCode.OK


def _update_one(
    app: App, git: Git, cache: Path, item: _Managed, commit: str, invalid: list[str]
) -> None:
    origin = item.origin
    name = printable_ascii(item.path.name)
    content = read_preset(git, cache, commit, origin.path)
    if content is None:
        app.warn(
            f"{origin.path} no longer exists in {origin.source.display}, "
            "leaving local file untouched"
        )
        return
    problem = toml_problem(content)
    if problem:
        invalid.append(f"{name} ({origin.source.display} at {commit[:12]}): {problem}")
        return
    new_text = f"{format_source_comment(origin.source.url, commit, origin.path)}\n{content}"
    if new_text == item.text:
        app.info(f"{name} is up to date")
        return
    if _locally_edited(git, cache, item):
        if not app.interactive:
            app.warn(f"{name} has local changes; not updated (run in a terminal to confirm)")
            return
        if not app.confirm(f"File {name} has local changes. Overwrite?"):
            return
    write_text_atomic(item.path, new_text, follow=False)
    app.info(f"Updated {name} ({origin.commit[:7]} -> {commit[:7]})")


def _locally_edited(git: Git, cache: Path, item: _Managed) -> bool:
    """True when the file differs from the version it was downloaded as (if still cached)."""
    if resolve(git, cache, item.origin.commit) is None:
        return False
    original = read_preset(git, cache, item.origin.commit, item.origin.path)
    if original is None:
        return False
    return strip_source_comments(item.text) != original
