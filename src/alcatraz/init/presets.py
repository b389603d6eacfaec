"""Presets: `.alca.*.toml` files shared through a git repository (`alca init git+URL`).

A preset is copied, not referenced: the project's `.alca.toml` includes `.alca.*.toml`, so a
downloaded file takes part in every load without any network access. Line 1 of each copy
records where it came from (`# Alcatraz Preset Source: git+URL#COMMIT:PATH`), which is what
`alca init --update` follows.

Repositories are fetched shallowly into bare caches under `<alca home>/cache-presets/`, so a
pinned commit that was fetched once needs no network again, and `--update` can fall back on
the cached copy when the network is down. Git always runs without a terminal prompt and with
stdin closed, so it can never block a script.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import SplitResult, urlsplit

from alcatraz.errors import AlcaError, ExitCode, UnavailableError, UsageError, quote
from alcatraz.init.sources import (
    ALLOWED_PROTOCOLS,
    confirm_sources,
    escaped_for_terminal,
)

if TYPE_CHECKING:
    from alcatraz.app import App
    from alcatraz.proc import Result

SOURCE_PREFIX: Final = "# Alcatraz Preset Source: "
PRESET_PATTERNS: Final = (".alca.*.toml", ".alca.*.toml.example")
SOURCE_SYNTAX: Final = "git+<clone-url>[#[commit]:[dir]]"
#: Schemes git can fetch without running anything local (no `ext::`, no helpers).
SCHEMES: Final = ("https", "http", "ssh", "git", "file")
MAX_PRESET_BYTES: Final = 1 << 20  # the same limit as a configuration file

_COMMIT = re.compile(r"[0-9a-fA-F]{4,40}")
_UNSAFE_PATH_CHARS = re.compile(r'[\\:*?"<>|+]')
#: Variables that would point git at another repository than the cache.
_REPO_ENV: Final = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_GRAFT_FILE",
        "GIT_REPLACE_REF_BASE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_CEILING_DIRECTORIES",
    }
)
_HEAD_REF: Final = "refs/presets/head"  # the newest commit fetched from HEAD
_PIN_REFS: Final = "refs/presets/commits/"  # keeps pinned commits from being pruned


# -- sources --------------------------------------------------------------------------------


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
                f"preset source comment {escaped_for_terminal(raw)} holds characters other "
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


# -- git ------------------------------------------------------------------------------------


class FetchError(AlcaError):
    """git could not fetch from the remote; `reason` is git's own explanation."""

    def __init__(self, source: PresetSource, reason: str, hint: str | None = None):
        super().__init__(
            f"failed to fetch {source.display}: {reason}",
            hint=hint or "check the URL, your network and your access to the repository",
        )
        self.reason = reason


def _reason(result: Result) -> str:
    """git's last complaint, without the `fatal: ` prefix."""
    lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[-1] if lines else f"git exited with status {result.returncode}"


class Git:
    """git through `app.runner`, isolated from the caller's repository and from the terminal."""

    def __init__(self, app: App):
        self.runner = app.runner
        env = {k: v for k, v in app.environ.items() if k not in _REPO_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"
        # Only the transports parse_source admits, whatever the user's git config says
        # (no ext::, fd::, remote helpers, also not through url.*.insteadOf rewrites).
        env["GIT_ALLOW_PROTOCOL"] = ALLOWED_PROTOCOLS
        if not app.interactive and "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
            env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
        self.env: Mapping[str, str] = env

    def run(
        self, *args: str, repo: Path | None = None, timeout: float = 120, protocol: str = ""
    ) -> Result:
        """Run git; `protocol` narrows the allowed transports to that one (for a fetch)."""
        argv = ["git", *(["-C", str(repo)] if repo is not None else []), *args]
        env = {**self.env, "GIT_ALLOW_PROTOCOL": protocol} if protocol else self.env
        try:
            return self.runner.run(argv, env=env, timeout=timeout)
        except UnavailableError:
            raise UnavailableError(
                "git is not installed (not found on PATH); presets are downloaded with git",
                hint="install git (e.g. 'apt install git', 'brew install git'), or fix PATH",
            ) from None

    def ok(self, *args: str, repo: Path) -> str | None:
        """stdout (stripped) when the command succeeds, else None."""
        result = self.run(*args, repo=repo)
        return result.stdout.strip() if result.ok else None

    def must(self, *args: str, repo: Path) -> str:
        result = self.run(*args, repo=repo)
        if not result.ok:
            raise AlcaError(
                f"git {args[0]} failed in the preset cache {repo}: {_reason(result)}",
                hint=f"delete {repo} and try again",
            )
        return result.stdout


def _init_cache(git: Git, cache: Path) -> None:
    if (cache / "HEAD").is_file() and (cache / "objects").is_dir():
        return
    cache.mkdir(parents=True, exist_ok=True)
    result = git.run("init", "--bare", "--quiet", str(cache))
    if not result.ok:
        raise AlcaError(
            f"cannot create the preset cache {cache}: {_reason(result)}",
            hint="check that alcatraz's directory is writable",
        )


def _resolve(git: Git, cache: Path, commit: str) -> str | None:
    """The full hash of `commit` if the cache has it."""
    return git.ok("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", repo=cache)


def fetch_commit(git: Git, cache: Path, source: PresetSource, commit: str | None) -> str:
    """Make sure the cache holds `commit` (or the remote's HEAD); return its full hash."""
    _init_cache(git, cache)
    if commit is not None:
        present = _resolve(git, cache, commit)
        if present:
            return present
    target = commit or "HEAD"
    try:
        result = git.run(
            "fetch",
            "--depth",
            "1",
            "--no-tags",
            source.url,
            target,
            repo=cache,
            timeout=600,
            protocol=source.scheme,
        )
    except UnavailableError:
        raise
    except AlcaError as error:  # the runner's timeout: the remote never answered
        raise FetchError(source, source.scrub(error.message.splitlines()[0])) from None
    if not result.ok:
        hint = None
        if commit is not None and len(commit) < 40:
            hint = "a remote can only be asked for a full 40-digit commit hash"
        raise FetchError(source, source.scrub(_reason(result)), hint)
    resolved = _resolve(git, cache, "FETCH_HEAD")
    if resolved is None or (commit is not None and not resolved.startswith(commit)):
        raise FetchError(source, f"the remote did not return commit {commit or 'HEAD'}")
    ref = _HEAD_REF if commit is None else _PIN_REFS + resolved
    git.must("update-ref", ref, resolved, repo=cache)
    return resolved


def cached_head(git: Git, cache: Path) -> str | None:
    """The newest commit fetched earlier, for working offline."""
    if not (cache / "HEAD").is_file():
        return None
    return _resolve(git, cache, _HEAD_REF) or _resolve(git, cache, "FETCH_HEAD")


def list_presets(git: Git, cache: Path, source: PresetSource, commit: str) -> list[str]:
    """Regular files in the preset directory named `.alca.*.toml` or `.alca.*.toml.example`."""
    result = git.run("ls-tree", "-z", f"{commit}:{source.directory}", repo=cache)
    if not result.ok:
        where = f"directory {quote(source.directory)}" if source.directory else "repository root"
        raise AlcaError(
            f"{where} not found in {source.display} at commit {commit[:12]}",
            hint="check the path after ':' in the URL fragment",
        )
    names: list[str] = []
    for entry in result.stdout.split("\0"):
        meta, _, name = entry.partition("\t")
        fields = meta.split()
        if len(fields) != 3 or fields[1] != "blob" or fields[0] == "120000":
            continue
        if any(ord(ch) < 0x20 for ch in name):
            continue
        if any(fnmatchcase(name, pattern) for pattern in PRESET_PATTERNS):
            names.append(name)
    return sorted(names)


def read_preset(git: Git, cache: Path, commit: str, path: str) -> str | None:
    """The text of `path` at `commit`, or None when it does not exist there."""
    spec = f"{commit}:{path}"
    if git.ok("cat-file", "-t", spec, repo=cache) != "blob":
        return None
    size = git.must("cat-file", "-s", spec, repo=cache).strip()
    if not size.isdigit() or int(size) > MAX_PRESET_BYTES:
        raise AlcaError(
            f"preset {path} is too large ({size} bytes; the limit is {MAX_PRESET_BYTES})",
            hint="a preset is a few kilobytes of TOML; check the repository",
        )
    try:
        text = git.must("cat-file", "blob", spec, repo=cache)
    except UnicodeDecodeError:
        raise AlcaError(
            f"preset {path} is not UTF-8 text", hint="presets must be UTF-8 TOML files"
        ) from None
    return strip_source_comments(text)


def toml_problem(text: str) -> str | None:
    """Why `text` is not valid TOML, or None when it is."""
    import tomllib

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return str(error)
    return None


# -- files ----------------------------------------------------------------------------------


def write_text_atomic(
    path: Path, text: str, *, exclusive: bool = False, follow: bool = True
) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file.

    `exclusive` refuses to replace an existing file, atomically (a hard link fails if the
    name exists). Otherwise an existing file keeps its permission bits and a symlink is
    followed, unless `follow` is false: then the rename replaces the link itself, so a
    link planted in the project cannot send the write elsewhere. A new file gets 0644.
    """
    target = path
    mode = 0o644
    if not exclusive:
        if follow and path.is_symlink():
            target = Path(os.path.realpath(path))
        with contextlib.suppress(OSError):
            info = target.stat() if follow else target.lstat()
            if stat.S_ISREG(info.st_mode):
                mode = stat.S_IMODE(info.st_mode)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        if not exclusive:
            tmp.replace(target)
            return
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError:
            # No hard links on this file system: fall back to check-then-rename.
            if os.path.lexists(target):
                raise FileExistsError(target) from None
            tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _credentials_warning(app: App) -> None:
    app.stderr.write(
        "Warning: The URL contains credentials that will be stored in downloaded files.\n"
        "These files may be committed to version control. Consider using SSH keys or\n"
        "git credential helpers instead.\n"
    )
    app.stderr.flush()


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
        app.stdout.write("Numbers separated by commas (Enter = all): ")
        app.stdout.flush()
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
        shown = escaped_for_terminal(path.name)
        if path.is_symlink():
            app.warn(f"{shown} is a symbolic link, not a downloaded preset; skipped")
            continue
        try:
            text = _read_regular(path)
        except (OSError, UnicodeDecodeError) as error:
            app.warn(f"cannot read {shown} ({escaped_for_terminal(str(error))}); skipped")
            continue
        if text is None:
            continue
        try:
            origin = parse_source_comment(text)
        except UsageError as error:
            # Already printable ASCII (the comment is checked first); escaped only if not.
            message = error.message
            if not all(0x20 <= ord(ch) < 0x7F for ch in message):
                message = escaped_for_terminal(message)
            app.warn(f"{shown}: {message}; skipped")
            continue
        if origin is None:
            continue
        if not any(fnmatchcase(origin.path.rsplit("/", 1)[-1], p) for p in PRESET_PATTERNS):
            app.warn(
                f"{shown}: its source names {escaped_for_terminal(origin.path)}, which is not "
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
            shown = escaped_for_terminal(source.display)
            reason = escaped_for_terminal(error.reason)  # git's text: the remote's words
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
    name = escaped_for_terminal(item.path.name)
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
    if _resolve(git, cache, item.origin.commit) is None:
        return False
    original = read_preset(git, cache, item.origin.commit, item.origin.path)
    if original is None:
        return False
    return strip_source_comments(item.text) != original
