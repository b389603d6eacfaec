"""Resolving a project's file graph: `extends` and `includes`, depth first, folded by merge.

Order (reference §2.2): for each file, its `extends` are resolved and folded right to left
(the first entry wins), the file itself goes on top, then its `includes` left to right (the
last wins). Each file is validated on its own first, so every error names its file.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import msgspec

from alcatraz import beneath
from alcatraz.config import model
from alcatraz.config.expand import expand_strict
from alcatraz.config.explain import find_line, validation_error
from alcatraz.config.globsyntax import glob_syntax_error
from alcatraz.config.layer import Layer, normalise
from alcatraz.config.merge import merge
from alcatraz.config.tomlread import read_toml
from alcatraz.errors import ConfigError, quote
from alcatraz.paths import display_path

MAX_DEPTH: Final = 32
MAX_FILES: Final = 256
_GLOB_CHARS: Final = frozenset("*?[")


class Resolver:
    """Depth-first resolution of one project's file graph."""

    def __init__(self, environ: Mapping[str, str], cwd: Path, root: Path | None = None):
        self.environ = environ
        self.cwd = cwd
        self.root = root
        self.files: list[Path] = []
        self.stack: list[Path] = []

    def display(self, path: Path) -> str:
        return display_path(path, self.cwd)

    def references(
        self, refs: list[str], *, key: str, base_dir: Path, display: str
    ) -> list[tuple[Path, str]]:
        """Paths named by `extends`/`includes`, each with the key that named it."""
        paths: list[tuple[Path, str]] = []
        for i, ref in enumerate(refs):
            where = f"{key}[{i}]"
            expanded = self._expand(ref, where, display)
            if _GLOB_CHARS & set(expanded):
                matches = _glob_matches(ref, expanded, base_dir, where, display)
                paths.extend((match, where) for match in matches)
            else:
                paths.append((_existing(ref, expanded, base_dir, where, display), where))
        return paths

    def _expand(self, ref: str, where: str, display: str) -> str:
        """The entry with variables and `~/` expanded, checked to be a plain path."""
        try:
            expanded = expand_strict(ref, self.environ)
        except ConfigError as error:
            raise error.located(file=display, key=where) from None
        if not expanded.strip():
            raise ConfigError(
                "path must not be empty", file=display, key=where, hint="remove the entry"
            )
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in expanded):
            raise ConfigError(
                f"path {quote(expanded)} contains a control character",
                file=display,
                key=where,
                hint="remove it from the path",
            )
        if expanded.startswith("~/"):
            expanded = self.environ.get("HOME", "~") + expanded[1:]
        return expanded

    def _enter(self, ref: Path, key: str, display: str) -> Layer:
        real = Path(os.path.realpath(ref))
        if real in self.stack:
            chain = " -> ".join(self.display(p) for p in [*self.stack, real])
            raise ConfigError(
                f"circular reference detected: {chain}",
                file=display,
                key=key,
                hint="remove this entry or another one of the loop",
            )
        return self.resolve(ref)

    def beneath_root(self, path: Path) -> None:
        """An extended or included file inside the project is reached without following a
        link (decision 0010): the agent owns the project and could turn the file, or a
        directory above it, into a link to any host file. `.alca.toml` itself sits in the
        root, which the agent cannot rename, and is bound read-only."""
        if self.root is None or not self.stack:
            return
        target = Path(os.path.normpath(path))
        for base in (self.root, self.root.resolve()):
            if target.is_relative_to(base):
                os.close(beneath.open_beneath(self.root, target.relative_to(base).as_posix()))
                return

    def resolve(self, path: Path) -> Layer:
        display = self.display(path)
        real = Path(os.path.realpath(path))
        if len(self.stack) >= MAX_DEPTH:
            raise ConfigError(
                f"extends/includes nested more than {MAX_DEPTH} levels deep",
                file=display,
                hint="flatten the chain of files",
            )
        if len(self.files) >= MAX_FILES:
            raise ConfigError(
                f"more than {MAX_FILES} configuration files take part",
                file=display,
                hint="narrow the extends/includes glob patterns",
            )
        data, text = read_toml(path, display)
        self.beneath_root(path)
        try:
            raw = msgspec.convert(data, model.ConfigLayer, strict=True)
        except msgspec.ValidationError as error:
            raise validation_error(error, data, text, display) from None
        base_dir = path.parent
        try:
            own = normalise(raw, file=display, base_dir=base_dir, environ=self.environ)
        except ConfigError as error:
            if error.line is None and error.key:
                last = re.split(r"[.\[]", error.key)
                name = next((p for p in reversed(last) if p and not p.rstrip("]").isdigit()), "")
                error.line = find_line(text, name.strip('"'), error.key.split(".")[0])
            raise
        self.files.append(real)
        self.stack.append(real)
        try:
            acc = Layer()
            extends = self.references(
                raw.extends or [], key="extends", base_dir=base_dir, display=display
            )
            includes = self.references(
                raw.includes or [], key="includes", base_dir=base_dir, display=display
            )
            for ref, key in reversed(extends):
                acc = merge(acc, self._enter(ref, key, display))
            acc = merge(acc, own)
            for ref, key in includes:
                acc = merge(acc, self._enter(ref, key, display))
        finally:
            self.stack.pop()
        return acc


def _glob_matches(ref: str, expanded: str, base_dir: Path, where: str, display: str) -> list[Path]:
    """The files a glob entry matches, sorted; each must have a printable name."""
    # Only the entry itself is a pattern: the directory it is relative to may contain
    # glob characters of its own (a project in "proj[1]").
    pattern = (
        expanded if os.path.isabs(expanded) else os.path.join(glob.escape(str(base_dir)), expanded)
    )
    bad = glob_syntax_error(expanded)
    if bad is not None:
        raise ConfigError(
            f"{quote(ref)} is not a valid glob pattern: {bad}",
            file=display,
            key=where,
            hint="close the bracket (e.g. conf/[ab].toml), or escape a literal '[' as '[[]'",
        )
    matches = sorted(glob.glob(pattern, include_hidden=True))
    if len(matches) > MAX_FILES:
        raise ConfigError(
            f"{quote(ref)} matches {len(matches)} files; at most {MAX_FILES} may take part",
            file=display,
            key=where,
            hint="narrow the glob pattern",
        )
    for name in (os.path.relpath(match, base_dir) for match in matches):
        if not name.isprintable():
            raise ConfigError(
                f"{quote(ref)} matches a file whose name holds control, format or "
                f"non-UTF-8 characters ({quote(name)}); a configuration file "
                "must have a plain name (it is shown for approval and mounted "
                "read-only)",
                file=display,
                key=where,
                hint="rename or remove that file (something in the sandbox may have written it)",
            )
    return [Path(os.path.normpath(m)) for m in matches]


def _existing(ref: str, expanded: str, base_dir: Path, where: str, display: str) -> Path:
    """The file a literal entry names, which must exist."""
    literal_path = expanded if os.path.isabs(expanded) else str(base_dir / expanded)
    literal = Path(os.path.normpath(literal_path))
    literal = Path(os.path.normpath(literal_path))
    if not literal.exists():
        raise ConfigError(
            f"{quote(ref)} does not exist ({quote(str(literal))})",
            file=display,
            key=where,
            hint="create the file, fix the path (relative to this file's directory), "
            "or use a glob pattern, which may match nothing",
        )
    return literal
