"""Load a project's configuration: read files, resolve extends/includes, merge, finalise.

Order (reference §2.2): for each file, its `extends` are resolved and folded right to left
(the first entry wins), the file itself goes on top, then its `includes` left to right (the
last wins). Each file is validated on its own first, so every error names its file. Reads
files and the environment; writes nothing.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from alcatraz import beneath
from alcatraz.config import model, private
from alcatraz.config.expand import expand_strict
from alcatraz.config.globsyntax import glob_syntax_error
from alcatraz.config.layer import Caps, Command, EnvVar, Layer, Mount, normalise
from alcatraz.config.merge import merge
from alcatraz.config.netgrammar import (
    LanRule,
    PortMapping,
    ProxyAddress,
    parse_lan_access,
    parse_proxy,
)
from alcatraz.errors import ConfigError, NotInitializedError, quote
from alcatraz.paths import CONFIG_NAME, alca_home, display_path

MAX_FILE_BYTES: Final = 1 << 20
MAX_DEPTH: Final = 32
MAX_FILES: Final = 256
_GLOB_CHARS: Final = frozenset("*?[")


@dataclass(frozen=True)
class Config:
    """The effective configuration of a project, after merging and defaults."""

    project_root: Path
    config_file: Path
    files: tuple[Path, ...]  # every file that took part, in load order
    image: str
    workdir: str
    workdir_exclude: tuple[str, ...]
    runtime: str
    up: Command | None
    enter: Command | None
    mounts: tuple[Mount, ...]  # user mounts; the project mount is `workdir_mount`
    memory: str | None
    cpus: float | None
    envs: Mapping[str, EnvVar]
    lan_access: tuple[str, ...]
    allow_all_lan: bool
    lan_rules: tuple[LanRule, ...]
    ports: tuple[PortMapping, ...]
    proxy: ProxyAddress | None
    proxy_text: str | None
    caps: Caps
    post_up: str
    pre_down: str
    origin: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    host_ca: bool = False  # the host's CA certificates reach the sandbox
    workdir_protect: tuple[str, ...] = ()
    workdir_unprotect: tuple[str, ...] = ()

    @property
    def workdir_mount(self) -> Mount:
        """Mount #0: the project itself, hidden files excluded."""
        return Mount(str(self.project_root), self.workdir, False, self.workdir_exclude)

    @property
    def all_mounts(self) -> tuple[Mount, ...]:
        return (self.workdir_mount, *self.mounts)


def _line_of(text: str, column_error: str) -> int | None:
    match = re.search(r"at line (\d+)", column_error)
    return int(match.group(1)) if match else None


def read_toml(path: Path, display: str) -> tuple[dict[str, Any], str]:
    """Parse one TOML file defensively: regular files only, bounded size, strict UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=display, hint="create it or fix the path"
        ) from None
    except PermissionError:
        raise ConfigError(
            "permission denied", file=display, hint="make the file readable by your user"
        ) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read file: {error.strerror}", file=display, hint="fix the path"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError("is a directory, not a file", file=display, hint="point at a .toml file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            "is not a regular file", file=display, hint="configuration must be a plain .toml file"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"file is too large ({info.st_size} bytes; the limit is {MAX_FILE_BYTES})",
            file=display,
            hint="a configuration file is a few kilobytes; check the path",
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except PermissionError:
        raise ConfigError(
            "permission denied", file=display, hint="make the file readable by your user"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError("is not a regular file", file=display, hint="use a plain file")
        data = handle.read(MAX_FILE_BYTES + 1)
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(
            "file starts with a byte-order mark",
            file=display,
            line=1,
            hint="save the file as UTF-8 without a BOM",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"file is not valid UTF-8 (byte {error.start})",
            file=display,
            line=bad_line,
            hint="save the file as UTF-8",
        ) from None
    if "\x00" in text:
        raise ConfigError(
            "file contains a NUL character",
            file=display,
            line=text[: text.index("\x00")].count("\n") + 1,
            hint="remove it; TOML files are text",
        )
    try:
        return tomllib.loads(text), text
    except RecursionError:
        raise ConfigError(
            "values are nested too deeply",
            file=display,
            hint="a configuration needs a few levels of tables at most; flatten it",
        ) from None
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        line = _line_of(text, message)
        if line is None and "end of document" in message:
            line = text.rstrip().count("\n") + 1
        summary = _toml_summary(
            re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        )
        raise ConfigError(
            f"invalid TOML: {summary}",
            file=display,
            line=line,
            hint="fix the syntax" + (f" at line {line}" if line else "") + " (see https://toml.io)",
        ) from None


def _toml_summary(message: str) -> str:
    """tomllib's wording, made readable (no Python tuples, names what to fix)."""
    declared = re.fullmatch(r"Cannot declare \((.*)\) twice", message)
    if declared:
        parts = [p.strip().strip("'\"") for p in declared.group(1).split(",") if p.strip()]
        return f"table [{'.'.join(parts)}] is declared twice"
    overwrite = re.fullmatch(r"Cannot overwrite a value", message)
    if overwrite:
        return "a key is set twice (or a key is redefined as a table)"
    if message.startswith("Illegal character '\\n'") or message == "Unterminated string":
        return "a string is not closed: a closing quote is missing"
    return message[:1].lower() + message[1:]


_TYPE_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "an array",
    "object": "a table",
    "null": "nothing",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time",
}


def _words(types: str) -> str:
    names = [t.strip() for t in types.split("|") if t.strip() != "null"]
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def _key_of(msgspec_path: str) -> str:
    """`$.network.lan-access[0]` -> `network.lan-access[0]`."""
    return msgspec_path.removeprefix("$").removeprefix(".")


def _table_of(key: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", key)


def _find_line(text: str, name: str, table: str = "") -> int | None:
    """Best-effort line of key `name` (preferably inside [table]) or of a [name] header."""
    key = re.compile(
        r"(?m)(?:^[ \t]*|[{,][ \t]*)(?:[\w.\"'-]*\.)?[\"']?" + re.escape(name) + r"[\"']?[ \t]*="
    )
    header = re.compile(r"(?m)^[ \t]*\[\[?[ \t]*" + re.escape(name) + r"[ \t]*\]")
    start = 0
    if table:
        table_header = re.compile(
            r"(?m)^[ \t]*\[\[?[ \t]*" + re.escape(table.split(".")[0]) + r"[ \t]*\]\]?"
        )
        found = table_header.search(text)
        if found:
            start = found.end()
    for pattern in (key, header):
        match = pattern.search(text, start) or pattern.search(text)
        if match:
            return text[: match.start()].count("\n") + 1
    return None


def _descriptions() -> dict[str, str]:
    """Key path (indices removed, env names as `*`) -> the field's documentation, for hints."""
    from msgspec import inspect as mi

    found: dict[str, str] = {}

    def walk(info: mi.Type, prefix: str) -> None:
        if isinstance(info, mi.Metadata):
            description = (info.extra_json_schema or {}).get("description")
            if description and prefix:
                found[prefix] = description  # deeper, more specific text wins
            walk(info.type, prefix)
        elif isinstance(info, mi.StructType):
            for f in info.fields:
                walk(f.type, f"{prefix}.{f.encode_name}" if prefix else f.encode_name)
        elif isinstance(info, mi.UnionType):
            for member in info.types:
                walk(member, prefix)
        elif isinstance(info, mi.ListType):
            walk(info.item_type, prefix)
        elif isinstance(info, mi.DictType):
            walk(info.value_type, prefix + ".*")

    walk(mi.type_info(model.ConfigLayer), "")
    return found


def _doc_for(key: str) -> str | None:
    table = re.sub(r"^envs\.[^.]+", "envs.*", _table_of(key))
    docs = _descriptions()
    while table:
        if table in docs:
            return docs[table]
        if "." not in table:
            return None
        table = table.rsplit(".", 1)[0]
    return None


def _validation_error(
    error: msgspec.ValidationError, data: dict[str, Any], text: str, display: str
) -> ConfigError:
    message = str(error)
    match = re.fullmatch(r"(?s)(?P<what>.*?)(?: - at `(?P<path>[^`]*)`)?", message)
    what = match.group("what") if match else message
    path = (match.group("path") if match else None) or "$"
    key = _key_of(path)
    if "[...]" in key and isinstance(data.get("envs"), dict):
        for name, value in data["envs"].items():
            try:
                msgspec.convert(value, model.EnvValue, strict=True)
            except msgspec.ValidationError:
                key = key.replace("[...]", f".{name}", 1)
                break
    unknown = re.fullmatch(r"Object contains unknown field `(?P<name>[^`]*)`", what)
    if unknown:
        import difflib

        name = unknown.group("name")
        table = re.sub(r"^envs\.[^.]+$", "envs", _table_of(key))
        known = model.known_keys().get(table, ())
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if not close:
            normalised = {k.replace("-", "").replace("_", "").lower(): k for k in known}
            candidate = normalised.get(name.replace("-", "").replace("_", "").lower())
            close = [candidate] if candidate else []
        # A key in the wrong table, e.g. lan-access at the top level.
        elsewhere = [t for t, keys in model.known_keys().items() if name in keys and t != table]
        where = (key if "[" in key else f"[{table}]") if table else "the top level"
        suggestion = f"; did you mean `{close[0]}`?" if close else ""
        if not close and elsewhere:
            suggestion = (
                f"; it belongs in [{elsewhere[0]}]"
                if elsewhere[0]
                else "; it belongs at the top level"
            )
        shown = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else quote(name)
        full_key = f"{key}.{shown}" if key else shown
        return ConfigError(
            f"unknown key `{shown}` in {where} of {display}{suggestion}",
            file=display,
            key=full_key,
            line=_find_line(text, name, table),
            hint="alcatraz rejects unknown keys so that a typo never switches a setting off; "
            "valid keys here: " + ", ".join(known),
        )
    missing = re.fullmatch(r"Object missing required field `(?P<name>[^`]*)`", what)
    if missing:
        name = missing.group("name")
        full_key = f"{key}.{name}" if key else name
        doc = _doc_for(full_key)
        return ConfigError(
            f"missing required key `{name}`",
            file=display,
            key=full_key,
            line=_find_line(text, key.rsplit(".", 1)[-1].split("[")[0]) if key else None,
            hint=f"add `{name}`" + (f": {doc}" if doc else ""),
        )
    expected = re.fullmatch(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`", what)
    doc = _doc_for(key)
    last = key.rsplit(".", 1)[-1].split("[")[0] if key else ""
    if expected:
        return ConfigError(
            f"expected {_words(expected.group('want'))}, got {_words(expected.group('got'))}",
            file=display,
            key=key or None,
            line=_find_line(text, last) if last else None,
            hint=doc or "see docs/config.md for the expected form",
        )
    return ConfigError(
        what[:1].lower() + what[1:],
        file=display,
        key=key or None,
        line=_find_line(text, last) if last else None,
        hint=doc or "see docs/config.md",
    )


class _Resolver:
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
            literal_path = expanded if os.path.isabs(expanded) else str(base_dir / expanded)
            # Only the entry itself is a pattern: the directory it is relative to may contain
            # glob characters of its own (a project in "proj[1]").
            pattern = (
                expanded
                if os.path.isabs(expanded)
                else os.path.join(glob.escape(str(base_dir)), expanded)
            )
            if _GLOB_CHARS & set(expanded):
                bad = glob_syntax_error(expanded)
                if bad is not None:
                    raise ConfigError(
                        f"{quote(ref)} is not a valid glob pattern: {bad}",
                        file=display,
                        key=where,
                        hint="close the bracket (e.g. conf/[ab].toml), or escape a literal "
                        "'[' as '[[]'",
                    )
                matches = sorted(glob.glob(pattern, include_hidden=True))
                if len(matches) > MAX_FILES:
                    raise ConfigError(
                        f"{quote(ref)} matches {len(matches)} files; at most {MAX_FILES} may "
                        "take part",
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
                            hint="rename or remove that file (something in the sandbox may "
                            "have written it)",
                        )
                paths.extend((Path(os.path.normpath(m)), where) for m in matches)
            else:
                literal = Path(os.path.normpath(literal_path))
                if not literal.exists():
                    raise ConfigError(
                        f"{quote(ref)} does not exist ({quote(str(literal))})",
                        file=display,
                        key=where,
                        hint="create the file, fix the path (relative to this file's directory), "
                        "or use a glob pattern, which may match nothing",
                    )
                paths.append((literal, where))
        return paths

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
            raise _validation_error(error, data, text, display) from None
        base_dir = path.parent
        try:
            own = normalise(raw, file=display, base_dir=base_dir, environ=self.environ)
        except ConfigError as error:
            if error.line is None and error.key:
                last = re.split(r"[.\[]", error.key)
                name = next((p for p in reversed(last) if p and not p.rstrip("]").isdigit()), "")
                error.line = _find_line(text, name.strip('"'), error.key.split(".")[0])
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


def _finalise(
    layer: Layer,
    *,
    root: Path,
    config_file: Path,
    files: list[Path],
    display: str,
    environ: Mapping[str, str],
) -> Config:
    origin = dict(layer.origin)

    def file_of(key: str) -> str:
        return ", ".join(origin.get(key, (display,)))

    if not layer.image:
        raise ConfigError(
            "image is required",
            file=display,
            key="image",
            hint='add a line such as image = "alpine:3.21" (or run `alca init`)',
        )
    workdir = layer.workdir or model.DEFAULT_WORKDIR
    targets: dict[str, str] = {}
    seen_per_file: dict[str, int] = {}
    for i, mount in enumerate(layer.mounts):
        file = file_of(f"mounts[{i}]")
        local = seen_per_file.get(file, 0)  # a file's mounts are appended contiguously
        seen_per_file[file] = local + 1
        here = f"mounts[{local}] of {file}"
        if mount.target == workdir:
            raise ConfigError(
                f"mount target {quote(mount.target)} conflicts with workdir",
                file=file,
                key=f"mounts[{local}]",
                hint="the project is already mounted at workdir; use workdir_exclude to hide "
                "files instead of a separate mount",
            )
        if mount.target in targets:
            raise ConfigError(
                f"mount target {quote(mount.target)} is used twice ({targets[mount.target]} "
                f"and {here})",
                file=file,
                key=f"mounts[{local}]",
                hint="give each mount its own target",
            )
        targets[mount.target] = here
    envs = {name: EnvVar(f"${{{name}}}", True) for name in model.DEFAULT_ENV_NAMES}
    envs.update(layer.envs)
    allow_all, rules = parse_lan_access(layer.lan_access)
    caps = (
        layer.caps
        if layer.caps is not None and layer.caps.has_entries
        else Caps(drop=("ALL",), add=model.DEFAULT_CAPS)
    )
    return Config(
        project_root=root,
        config_file=config_file,
        files=tuple(files),
        image=layer.image,
        workdir=workdir,
        workdir_exclude=layer.workdir_exclude or (),
        runtime=layer.runtime or "auto",
        up=layer.up if layer.up and layer.up.command else None,
        enter=layer.enter if layer.enter and layer.enter.command else None,
        mounts=_resolve_private(layer.mounts, root, environ),
        memory=layer.memory,
        cpus=layer.cpus,
        envs=envs,
        lan_access=layer.lan_access,
        allow_all_lan=allow_all,
        lan_rules=rules,
        ports=layer.ports or (),
        proxy=parse_proxy(layer.proxy) if layer.proxy else None,
        proxy_text=layer.proxy,
        caps=caps,
        post_up=layer.post_up or "",
        pre_down=layer.pre_down or "",
        origin=origin,
        host_ca=bool(layer.host_ca),
        workdir_protect=tuple(dict.fromkeys(layer.workdir_protect)),
        workdir_unprotect=tuple(dict.fromkeys(layer.workdir_unprotect)),
    )


def _resolve_private(
    mounts: tuple[Mount, ...], root: Path, environ: Mapping[str, str]
) -> tuple[Mount, ...]:
    """`${alca:PRIVATE}/NAME` sources as paths under this project's per-user state."""
    if not any(private.is_private(m.source) for m in mounts):
        return mounts
    home = alca_home(dict(environ))
    return tuple(
        dataclasses.replace(m, source=private.resolve(m.source, home, root))
        if private.is_private(m.source)
        else m
        for m in mounts
    )


def load_config(
    project_root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Load `<project_root>/.alca.toml` with everything it extends and includes."""
    env = os.environ if environ is None else environ
    config_file = project_root / CONFIG_NAME
    if not os.path.lexists(config_file):
        raise NotInitializedError(
            "configuration not found: run 'alca init' first",
            hint=f"no {CONFIG_NAME} in {project_root} or any parent directory",
        )
    resolver = _Resolver(env, cwd if cwd is not None else Path.cwd(), project_root)
    layer = resolver.resolve(config_file)
    return _finalise(
        layer,
        root=project_root,
        config_file=config_file,
        files=resolver.files,
        display=resolver.display(config_file),
        environ=env,
    )
