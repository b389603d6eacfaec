"""Where a preset comes from: `git+<clone-url>[#[commit]:[dir]]`, checked before any network
access, the cache directory it maps to, and the source comment on line 1 of each copy
(`# Alcatraz Preset Source: git+URL#COMMIT:PATH`), which `alca init --update` follows.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, urlsplit

from alcatraz.errors import UsageError, quote
from alcatraz.printable import printable_ascii

SOURCE_PREFIX: Final = "# Alcatraz Preset Source: "
SOURCE_SYNTAX: Final = "git+<clone-url>[#[commit]:[dir]]"
#: Schemes git can fetch without running anything local (no `ext::`, no helpers).
SCHEMES: Final = ("https", "http", "ssh", "git", "file")

_COMMIT = re.compile(r"[0-9a-fA-F]{4,40}")
_UNSAFE_PATH_CHARS = re.compile(r'[\\:*?"<>|+]')


@dataclass(frozen=True)
class PresetSource:
    """A parsed `git+<clone-url>[#[commit]:[dir]]`."""

    url: str  # the clone URL as given: no `git+`, no fragment (recorded in source comments)
    scheme: str
    host: str
    username: str | None
    password: str | None
    path: str
    commit: str | None = None
    directory: str = ""  # "" is the repository root

    @property
    def secret(self) -> str | None:
        """The part of the user info that may be a secret: a password, or an HTTP(S) user
        name (tokens are often given as one). An ssh user name such as `git` is not."""
        if self.password is not None:
            return self.password
        if self.username and self.scheme in ("http", "https"):
            return self.username
        return None

    @property
    def has_credentials(self) -> bool:
        return self.secret is not None

    @property
    def display(self) -> str:
        """The URL for messages: a secret is never printed."""
        return self.scrub(self.url)

    def scrub(self, text: str) -> str:
        """Remove the secret from text (such as git's error messages)."""
        return text.replace(self.secret, "***") if self.secret else text


def _check_text(text: str, what: str) -> None:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise UsageError(
            f"invalid {what} {quote(text)}: whitespace and control characters are not allowed",
            hint="percent-encode them in the URL (a space is %20)",
        )


def _split_url(url: str, original: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as error:
        raise UsageError(
            f"invalid preset URL {quote(original)}: {error}", hint=f"use {SOURCE_SYNTAX}"
        ) from None
    return parts


def parse_source(text: str) -> PresetSource:
    """Validate `git+<clone-url>[#[commit]:[dir]]` before anything touches the network."""
    if not text.startswith("git+"):
        raise UsageError(
            f"invalid preset source {quote(text)}: expected {SOURCE_SYNTAX}",
            hint="to start from a template instead, run 'alca init --template NAME'",
        )
    _check_text(text, "preset source")
    url, has_fragment, fragment = text[4:].partition("#")
    parts = _split_url(url, text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or "://" not in url:
        raise UsageError(
            f"unsupported preset URL {quote(text)}: the clone URL must start with "
            + ", ".join(f"{s}://" for s in SCHEMES),
            hint="write scp-style addresses as ssh://, e.g. "
            "git+ssh://git@github.com/owner/repo.git",
        )
    host = (parts.hostname or "").lower()
    if scheme == "file":
        if host not in ("", "localhost"):
            raise UsageError(
                f"unsupported preset URL {quote(text)}: file:// URLs must be local",
                hint="use file:///absolute/path/to/repo",
            )
        host = "localhost"
    elif not host:
        raise UsageError(
            f"invalid preset URL {quote(text)}: missing host", hint=f"use {SOURCE_SYNTAX}"
        )
    if host.startswith("-") or (parts.username or "").startswith("-"):
        raise UsageError(f"invalid preset URL {quote(text)}: a host must not start with '-'")
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    commit: str | None = None
    directory = ""
    if has_fragment:
        raw_commit, _, raw_dir = fragment.partition(":")
        if raw_commit:
            if not _COMMIT.fullmatch(raw_commit):
                raise UsageError(
                    f"invalid commit {quote(raw_commit)} in {quote(text)}: "
                    "expected 4 to 40 hexadecimal digits",
                    hint="give a commit hash (e.g. from 'git log'), or leave it out for the "
                    "newest commit",
                )
            commit = raw_commit.lower()
        directory = _check_directory(raw_dir, text)
    return PresetSource(
        url=url,
        scheme=scheme,
        host=host,
        username=parts.username,
        password=parts.password,
        path=parts.path,
        commit=commit,
        directory=directory,
    )


def _check_directory(raw: str, text: str) -> str:
    """A repository-relative directory: no `:` (ref syntax) and no `..` (escapes)."""
    if ":" in raw or ".." in raw:
        raise UsageError(
            f"invalid directory {quote(raw)} in {quote(text)}: it must not contain ':' or '..'",
            hint="give a path inside the repository, e.g. #:presets/node",
        )
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _component(text: str) -> str:
    cleaned = _UNSAFE_PATH_CHARS.sub("-", text).replace("/", "-")
    return cleaned if cleaned.strip(".") else "-"


def cache_dir(home: Path, source: PresetSource) -> Path:
    """`cache-presets/<host>/<git-scheme>/<user or ->/<repo path, . -> ->`.

    A secret never appears in a path: it is replaced by a short hash, so different
    credentials still get different caches.
    """
    credentials = _component(source.username) if source.username else "-"
    if source.secret is not None:
        digest = hashlib.sha256(source.secret.encode()).hexdigest()[:12]
        keep = source.username if source.password is not None and source.username else ""
        credentials = (_component(keep) + "-" if keep else "") + digest
    repo = [_component(p.replace(".", "-")) for p in source.path.split("/") if p]
    root = home / "cache-presets"
    path = root.joinpath(
        _component(source.host), _component("git+" + source.scheme), credentials, *(repo or ["-"])
    )
    if root not in path.parents:  # cannot happen with the cleaning above; kept as a guard
        raise UsageError(f"invalid preset URL {quote(source.url)}")
    return path


# -- source comments ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceComment:
    """Line 1 of a downloaded preset: where it came from."""

    source: PresetSource
    commit: str
    path: str  # the file's path inside the repository


def format_source_comment(url: str, commit: str, path: str) -> str:
    return f"{SOURCE_PREFIX}git+{url}#{commit}:{path}"


def parse_source_comment(text: str) -> SourceComment | None:
    """The source comment among the file's leading comment lines, or None if there is none.

    Raises UsageError for a malformed one: such a URL comes from a file, possibly from
    someone else, so it gets the same validation as one typed on the command line.
    """
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.startswith("#"):
            return None
        if not line.startswith(SOURCE_PREFIX):
            continue
        raw = line[len(SOURCE_PREFIX) :].strip()
        if not all(0x21 <= ord(ch) < 0x7F for ch in raw):
            raise UsageError(
                f"preset source comment {printable_ascii(raw)} holds characters other "
                "than printable ASCII",
                hint="percent-encode them in the URL, or download the preset again",
            )
        base, found, fragment = raw.rpartition("#")
        commit, _, path = fragment.partition(":")
        if not found or not _COMMIT.fullmatch(commit) or not path:
            raise UsageError(f"malformed preset source comment {quote(raw)}")
        source = parse_source(base)
        _check_directory(path, raw)
        return SourceComment(source, commit.lower(), path)
    return None


def strip_source_comments(content: str) -> str:
    """Drop source comments among the leading comments (a re-published download has one)."""
    lines = [line for line in re.split(r"(?<=\n)", content) if line]
    kept: list[str] = []
    leading = True
    for line in lines:
        if leading and line.startswith("#"):
            if line.startswith(SOURCE_PREFIX):
                continue
        else:
            leading = False
        kept.append(line)
    return "".join(kept)
