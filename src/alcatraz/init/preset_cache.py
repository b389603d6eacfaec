"""The bare git caches presets are fetched into (`<alca home>/cache-presets/`).

Repositories are fetched shallowly, so a pinned commit that was fetched once needs no
network again, and `--update` can fall back on the cached copy when the network is down.
Git always runs without a terminal prompt and with stdin closed, so it can never block a
script, and only with the transports a preset URL may use.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Final

from alcatraz.errors import AlcaError, UnavailableError, quote
from alcatraz.init.preset_url import PresetSource, strip_source_comments
from alcatraz.init.sources import ALLOWED_PROTOCOLS

if TYPE_CHECKING:
    from alcatraz.app import App
    from alcatraz.proc import Result

PRESET_PATTERNS: Final = (".alca.*.toml", ".alca.*.toml.example")
MAX_PRESET_BYTES: Final = 1 << 20  # the same limit as a configuration file

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


def resolve(git: Git, cache: Path, commit: str) -> str | None:
    """The full hash of `commit` if the cache has it."""
    return git.ok("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", repo=cache)


def fetch_commit(git: Git, cache: Path, source: PresetSource, commit: str | None) -> str:
    """Make sure the cache holds `commit` (or the remote's HEAD); return its full hash."""
    _init_cache(git, cache)
    if commit is not None:
        present = resolve(git, cache, commit)
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
    resolved = resolve(git, cache, "FETCH_HEAD")
    if resolved is None or (commit is not None and not resolved.startswith(commit)):
        raise FetchError(source, f"the remote did not return commit {commit or 'HEAD'}")
    ref = _HEAD_REF if commit is None else _PIN_REFS + resolved
    git.must("update-ref", ref, resolved, repo=cache)
    return resolved


def cached_head(git: Git, cache: Path) -> str | None:
    """The newest commit fetched earlier, for working offline."""
    if not (cache / "HEAD").is_file():
        return None
    return resolve(git, cache, _HEAD_REF) or resolve(git, cache, "FETCH_HEAD")


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
