"""The starting configurations `alca init --template NAME` writes, and their TOML rendering.

The text is rendered by hand rather than through a TOML library so that every file keeps
its comments, its key order and readable `\"\"\"` shell scripts. The renderer escapes strings
itself; a test proves each template reads back to exactly these values.

Shell scripts here run with `sh -c` (dash on Debian, busybox ash on Alpine), so they use
`.` rather than `source`. `alca run CMD` appends the quoted CMD to `commands.enter`, so each
enter script ends either with a newline (CMD then runs as the next line) or with a function
call that takes CMD as its arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Lines `alca init` adds to `.gitignore`: per-user state, local overrides, cache mounts.
GITIGNORE_ENTRIES: Final = (".alca/", ".alca.local.toml", ".alca.*.local.toml", ".alca.mounts/")

#: Where the user documentation lives (no URL: it must hold for forks and offline copies).
REFERENCE_COMMENT: Final = "# Reference: docs/config.md in the alcatraz repository"

#: Local overrides and presets (`.alca.<name>.toml`) sit on top of the project file.
DEFAULT_INCLUDES: Final = ("./.alca.*.toml",)

#: The upstream templates' exclusions, kept for compatibility.
UPSTREAM_EXCLUDES: Final = (".env", ".alca.mounts")

#: What an agent must never read: dotenv files, private keys, secret folders.
AGENT_EXCLUDES: Final = (
    "**/.env",
    "**/.env.*",
    "**/*.pem",
    "**/*.key",
    "**/secrets/",
    "**/.ssh/",
    ".alca.mounts",
)


@dataclass(frozen=True)
class Template:
    """One starting configuration: the values, and the comments that explain them."""

    name: str
    label: str  # one line for the interactive menu
    image: str
    up: str
    enter: str
    up_comment: str = "prepare the environment"
    enter_comment: str = ""
    intro: tuple[str, ...] = ()  # comment lines at the top of the TOML part
    image_comment: tuple[str, ...] = ()
    workdir_exclude: tuple[str, ...] = UPSTREAM_EXCLUDES
    includes: tuple[str, ...] = DEFAULT_INCLUDES
    mounts: tuple[str, ...] = ()
    mounts_comment: tuple[str, ...] = ()
    envs: tuple[tuple[str, str], ...] = (("IS_SANDBOX", "1"),)
    mount_lines: tuple[str, ...] = ()  # raw TOML lines (entries, comments) after `mounts`
    env_lines: tuple[str, ...] = ()  # raw TOML lines after `envs`
    egress: tuple[str, ...] | None = None  # `[network] egress`; None: not written (open)
    agent: str | None = None  # the preset's name, written as `agent` for `alca status`


_RUN_NOTE: Final = "`alca run CMD` runs this, then CMD on the line after it"
_EXTRA_MOUNTS: Final = (
    ".alca.mounts/extra-bin:/extra-bin",
    ".alca.mounts/extra-scripts:/extra-scripts",
)
_EXTRA_COMMENT: Final = (
    "Kept across re-creation, outside the synced project: tool installs, and your own",
    "/extra-bin programs and /extra-scripts/{source.sh,init.sh} hooks.",
)


def _mise_up(shims: str, rc_file: str, install: str) -> str:
    """Setup shared by the mise templates: install (if needed), PATH, hooks, `mise install`.

    `set -e` makes a broken setup fail `alca up` (the next `alca up` retries), except for
    `mise install`, whose failure (e.g. a tool without a musl build) only warns.
    """
    path_line = f'export PATH="{shims}:/extra-bin:$PATH"'
    return (
        "set -e\n"
        + install
        + f"if ! grep -qsF '{shims}' {rc_file}; then\n"
        + f"  echo '{path_line}' >> {rc_file}\n"
        + "fi\n"
        + path_line
        + "\n"
        + "if [ -f /extra-scripts/source.sh ]; then . /extra-scripts/source.sh; fi\n"
        + "mise trust --all && mise install || "
        + "echo \"alca: 'mise install' failed; retry with: alca run mise install\" >&2\n"
        + "if [ -x /extra-scripts/init.sh ]; then /extra-scripts/init.sh; fi\n"
    )


def _mise_enter(shims: str) -> str:
    """PATH is set here, not read from an rc file, so `alca run` works even before `up` ends."""
    return (
        f'export PATH="{shims}:/extra-bin:$PATH"\n'
        "if [ -f /extra-scripts/source.sh ]; then . /extra-scripts/source.sh; fi\n"
    )


_DEBIAN_MISE_INSTALL: Final = (
    "if ! command -v mise >/dev/null 2>&1; then\n"
    "  export DEBIAN_FRONTEND=noninteractive\n"
    "  apt-get update\n"
    "  apt-get install -y --no-install-recommends ca-certificates curl\n"
    "  install -dm 755 /etc/apt/keyrings\n"
    "  curl -fsSL https://mise.jdx.dev/gpg-key.pub -o /etc/apt/keyrings/mise-archive-keyring.asc\n"
    '  echo "deb [signed-by=/etc/apt/keyrings/mise-archive-keyring.asc]'
    ' https://mise.jdx.dev/deb stable main" > /etc/apt/sources.list.d/mise.list\n'
    "  apt-get update\n"
    "  apt-get install -y mise\n"
    "fi\n"
)

_NIX_PROFILE: Final = "/nix/var/nix/profiles/devshell"

_AGENT_UP: Final = (
    "set -e\n"
    "export DEBIAN_FRONTEND=noninteractive\n"
    "apt-get update\n"
    "apt-get install -y --no-install-recommends \\\n"
    "  ca-certificates curl git jq less procps ripgrep unzip\n"
    "# a git identity for the agent's commits (the project's .git/config is read-only\n"
    "# inside); set your own once with: alca run git config --global user.name ...\n"
    "git config --global user.name >/dev/null || git config --global user.name 'Agent (alcatraz)'\n"
    "git config --global user.email >/dev/null ||\n"
    "  git config --global user.email agent@alcatraz.invalid\n"
    "mkdir -p /root/.npm-global/bin\n"
    "if ! grep -qsF '/root/.npm-global/bin' ~/.bashrc; then\n"
    "  echo 'export PATH=\"/root/.npm-global/bin:$PATH\"' >> ~/.bashrc\n"
    "fi\n"
)

#: What the `agent` template's own set-up reaches: Debian's packages (bookworm images fetch
#: security updates from deb.debian.org too), npm's registry for the agent's install, and
#: GitHub for git dependencies and release downloads. Sources: docs/agents.md.
AGENT_EGRESS: Final = (
    "deb.debian.org",
    "registry.npmjs.org",
    "github.com",
    "*.githubusercontent.com",
)

_EGRESS_COMMENT: Final = (
    "The internet names this sandbox may reach; everything else is refused (the agent sees",
    "NXDOMAIN, or a reset connection). `alca net log` lists what was refused and",
    "`alca net allow NAME` proposes an entry. Where each entry comes from: docs/agents.md.",
)

TEMPLATES: Final[dict[str, Template]] = {
    t.name: t
    for t in (
        Template(
            name="alpine",
            label="Alpine - Lightweight Alpine environment with mise",
            image="alpine:3.21",
            mounts=(".alca.mounts/mise:/root/.local/share/mise", *_EXTRA_MOUNTS),
            mounts_comment=_EXTRA_COMMENT,
            up=_mise_up("/root/.local/share/mise/shims", "~/.profile", "apk add --no-cache mise\n"),
            enter=_mise_enter("/root/.local/share/mise/shims"),
            enter_comment=_RUN_NOTE,
        ),
        Template(
            name="agent",
            label="Agent - Node.js on Debian slim for AI agent CLIs; secrets hidden, state kept",
            intro=(
                "A sandbox for AI coding agents. After `alca up`, install an agent once, e.g.",
                "  alca run npm install -g @anthropic-ai/claude-code",
                "  alca run claude --dangerously-skip-permissions",
                "Nothing from your host home (keys, tokens, cloud credentials) is mounted.",
            ),
            image="node:22-bookworm-slim",
            image_comment=("Debian bookworm slim with Node.js 22 and npm.",),
            workdir_exclude=AGENT_EXCLUDES,
            mounts=(".alca.mounts/home:/root",),
            mounts_comment=(
                "The sandbox's own home: global npm installs, tool caches and the logins you",
                "make inside the sandbox survive re-creating the container.",
            ),
            envs=(("IS_SANDBOX", "1"), ("NPM_CONFIG_PREFIX", "/root/.npm-global")),
            up=_AGENT_UP,
            enter='export PATH="/root/.npm-global/bin:$PATH"\n',
            enter_comment=_RUN_NOTE,
        ),
        Template(
            name="debian-slim",
            label="Debian slim - Plain Debian with mise installed on first run",
            image="debian:bookworm-slim",
            mounts=(".alca.mounts/mise:/root/.local/share/mise", *_EXTRA_MOUNTS),
            mounts_comment=_EXTRA_COMMENT,
            up=_mise_up("/root/.local/share/mise/shims", "~/.bashrc", _DEBIAN_MISE_INSTALL),
            enter=_mise_enter("/root/.local/share/mise/shims"),
            enter_comment=_RUN_NOTE,
        ),
        Template(
            name="nix",
            label="Nix - NixOS-based development environment (uses flake.nix when present)",
            image="nixos/nix",
            mounts=(".alca.mounts/mise:/root/.local/share/mise",),
            envs=(
                ("IS_SANDBOX", "1"),
                ("NIXPKGS_ALLOW_UNFREE", "1"),
                ("NIX_CONFIG", "extra-experimental-features = nix-command flakes"),
            ),
            up_comment="prebuild, to reduce the time costs on enter",
            up=(
                "if [ -f flake.nix ]; then\n"
                f"  nix develop --profile {_NIX_PROFILE} --command true\n"
                "fi\n"
            ),
            enter_comment=(
                "`alca run CMD` calls alca_enter CMD: inside the flake's dev shell if there is one"
            ),
            enter=(
                "alca_enter() {\n"
                "  if [ -f flake.nix ]; then\n"
                f'    exec nix develop --profile {_NIX_PROFILE} --command "$@"\n'
                "  fi\n"
                '  exec "$@"\n'
                "}\n"
                "alca_enter"
            ),
        ),
        Template(
            name="debian-mise",
            label="Debian+mise - Pre-built Debian image with mise, build-essential",
            image="ghcr.io/bolasblack/alca-debian:latest",
            image_comment=(
                "Pre-built by the upstream Go project: Debian with mise and build-essential.",
            ),
            mounts=(".alca.mounts/mise:/mise", *_EXTRA_MOUNTS),
            mounts_comment=_EXTRA_COMMENT,
            envs=(("IS_SANDBOX", "1"), ("MISE_DATA_DIR", "/mise")),
            up=_mise_up("/mise/shims", "~/.bashrc", ""),
            enter=_mise_enter("/mise/shims"),
            enter_comment=_RUN_NOTE,
        ),
    )
}

#: Offered first in the menu, and the answer when the user just presses Enter.
DEFAULT_TEMPLATE: Final = "alpine"


def template_names() -> list[str]:
    """Valid `--template` values, sorted as in error messages."""
    return sorted(TEMPLATES)


# -- TOML rendering ---------------------------------------------------------------------------

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_SHORT_ESCAPES: Final = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape_char(ch: str, *, multiline: bool) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == '"' and not multiline:
        return '\\"'
    if multiline and ch in "\n\t":
        return ch
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04X}"
    return ch


def toml_string(value: str) -> str:
    """A TOML basic string: `"..."` with the escapes TOML requires."""
    return '"' + "".join(_escape_char(ch, multiline=False) for ch in value) + '"'


def toml_multiline(value: str) -> str:
    """A TOML multi-line basic string that reads back as exactly `value`.

    The opening `\"\"\"` is followed by a newline, which TOML drops. Runs of three quotes are
    broken with an escape, and a final quote is escaped so it cannot merge with the closer.
    """
    pieces: list[str] = []
    run = 0  # quotes in a row so far
    for index, ch in enumerate(value):
        if ch != '"':
            run = 0
            pieces.append(_escape_char(ch, multiline=True))
            continue
        run += 1
        if run == 3 or index == len(value) - 1:
            pieces.append('\\"')
            run = 0
        else:
            pieces.append('"')
    body = "".join(pieces)
    return '"""\n' + body + '"""'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def _array(values: tuple[str, ...], indent: str = "  ") -> str:
    """Short arrays on one line, longer ones one item per line (easier to edit and diff)."""
    inline = "[" + ", ".join(toml_string(v) for v in values) + "]"
    if len(inline) <= 60:
        return inline
    return "[\n" + "".join(f"{indent}{toml_string(v)},\n" for v in values) + "]"


def _comments(lines: tuple[str, ...] | str) -> str:
    items = (lines,) if isinstance(lines, str) else lines
    return "".join(f"# {line}\n" if line else "#\n" for line in items)


def render(template: Template, *, schema_line: str) -> str:
    """The complete `.alca.toml` text: the schema and reference comments, then the TOML."""
    parts: list[str] = [f"{schema_line}\n{REFERENCE_COMMENT}\n\n"]
    if template.intro:
        parts.append(_comments(template.intro) + "\n")
    parts.append(_comments(template.image_comment))
    parts.append(f"image = {toml_string(template.image)}\n")
    if template.agent:
        parts.append(
            f"# The agent preset (`alca status` names it)\nagent = {toml_string(template.agent)}\n"
        )
    parts.append(
        "# Hidden from the container (the project is then synced rather than bind-mounted)\n"
        f"workdir_exclude = {_array(template.workdir_exclude)}\n"
    )
    parts.append(
        "# Local overrides (.alca.local.toml, git-ignored) and presets (.alca.<name>.toml)\n"
        f"includes = {_array(template.includes)}\n"
    )
    if template.mount_lines:
        parts.append("\n" + _comments(template.mounts_comment))
        entries = [f"  {toml_string(m)},\n" for m in template.mounts]
        entries += [f"  {line}\n" for line in template.mount_lines]
        parts.append("mounts = [\n" + "".join(entries) + "]\n")
    elif template.mounts:
        parts.append("\n" + _comments(template.mounts_comment))
        parts.append(f"mounts = {_array(template.mounts)}\n")
    parts.append("\n[commands]\n")
    parts.append(_comments(template.up_comment) + f"up = {toml_multiline(template.up)}\n")
    if template.enter_comment:
        parts.append(_comments(template.enter_comment))
    parts.append(f"enter = {toml_multiline(template.enter)}\n")
    if template.envs or template.env_lines:
        parts.append("\n[envs]\n")
        parts.extend(f"{toml_key(k)} = {toml_string(v)}\n" for k, v in template.envs)
        parts.extend(f"{line}\n" for line in template.env_lines)
    if template.egress is not None:
        parts.append("\n[network]\n" + _comments(_EGRESS_COMMENT))
        parts.append(f"egress = {_array(template.egress)}\n")
    return "".join(parts)
